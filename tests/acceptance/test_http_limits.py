"""HTTP connection limits of a real `errand serve`, over raw loopback sockets.

Idle sockets must not lock others out (a connection cap that closes the oldest idle one, and a
raised open-file limit), a huge header is refused with 431 without growing memory, a header
dribbled byte by byte is cut at the header timeout, and an idle connection at its keep-alive
timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.procs import Proc, serving, write_formation

pytestmark = pytest.mark.slow

KEY = "limits-client-key"
LOW_NOFILE = 1024
"""The soft open-file limit many hosts start a process with."""


def _formation(folder: Path, server: dict[str, Any]) -> Path:
    return write_formation(
        folder,
        {
            "name": "limits",
            "keys": {"client": [KEY], "admin": ["limits-admin-key"]},
            "storage": {"url": "sqlite:///limits.db"},
            "server": server,
            "agents": [{"id": "demo", "handler": "errand.agents.demo:run", "options": {"step_seconds": 0}}],
        },
    )


def _low_nofile() -> None:
    """In the child before exec: start with a soft limit of 1024 open files, as many hosts do."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_NOFILE, hard))


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Proc]]:
    """A server with a 400-connection cap and long timeouts (so only the cap closes sockets),
    started with a soft open-file limit of 1024."""
    tmp = tmp_path_factory.mktemp("capped")
    server = {"max_connections": 400, "keepalive_timeout_seconds": 30, "header_timeout_seconds": 30}
    with serving(_formation(tmp, server), tmp / "serve.log", preexec=_low_nofile) as running:
        yield running


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Proc]]:
    """A server with short timeouts and a cap of 20 connections."""
    tmp = tmp_path_factory.mktemp("quick")
    server = {"max_connections": 20, "keepalive_timeout_seconds": 1, "header_timeout_seconds": 1.5}
    with serving(_formation(tmp, server), tmp / "serve.log") as running:
        yield running


def _address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _connect(base: str, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(_address(base), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer (read until its Content-Length or the close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes the socket (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def _error(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "details"}, doc
    error: dict[str, Any] = doc["error"]
    return error


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")  # pragma: no cover


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit")  # pragma: no cover


def _pid(proc: Proc) -> int:
    assert proc.p is not None
    return proc.p.pid


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def test_idle_connections_do_not_lock_others_out(capped: tuple[str, Proc]) -> None:
    base, proc = capped
    pid = _pid(proc)
    assert _soft_nofile(pid) > LOW_NOFILE  # raised at start
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(_connect(base))
        time.sleep(0.5)  # let the server accept them all
        health, took = _timed(lambda: httpx.get(f"{base}/health", timeout=5))
        assert health.status_code == 200 and took < 2, (health.status_code, took)
        submit, took = _timed(
            lambda: httpx.post(
                f"{base}/v1/chat",
                json={"message": "hello", "mode": "async"},
                headers={"X-Muxi-Client-Key": KEY},
                timeout=5,
            )
        )
        assert submit.status_code == 202 and took < 2, (submit.text, took)
        open_fds = len(os.listdir(f"/proc/{pid}/fd"))
        assert open_fds < 400 + 150, open_fds  # the cap, plus the database and the process's own
        # the oldest idle sockets made room: the server closed them
        closed = sum(_closed_by_server(s, 0.001) for s in idle[:600])
        assert closed >= 500, closed
    finally:
        for s in idle:
            s.close()


def test_huge_header_answers_431_in_the_error_shape(capped: tuple[str, Proc]) -> None:
    base, _ = capped
    with _connect(base) as sock:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1024 * 1024 + b"\r\n\r\n"
        sender = threading.Thread(target=_send_ignoring_errors, args=(sock, request), daemon=True)
        sender.start()
        status, headers, body = _read_answer(sock)
        sender.join(10)
    assert status == 431
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    error = _error(body)
    assert error["code"] == "HEADERS_TOO_LARGE" and "65536" in error["message"], error
    # headers just under the limit are served
    ok = httpx.get(f"{base}/health", headers={"X-Big": "a" * 60_000}, timeout=5)
    assert ok.status_code == 200, ok.text


def test_a_body_in_the_same_packet_as_the_head_is_not_counted_as_head(capped: tuple[str, Proc]) -> None:
    base, _ = capped
    body = json.dumps({"message": "x" * 150_000, "mode": "async"}).encode()
    head = (
        f"POST /v1/chat HTTP/1.1\r\nHost: x\r\nX-Muxi-Client-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(base) as sock:
        sock.sendall(head + body)  # one write: the server reads head and body together
        status, _, answer = _read_answer(sock)
    assert status == 202, answer


def test_header_flood_does_not_grow_memory(capped: tuple[str, Proc]) -> None:
    base, proc = capped
    pid = _pid(proc)
    before = _rss_kib(pid)
    started = time.monotonic()
    with _connect(base) as sock:
        sent = _flood(sock, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ", megabytes=100)
    took = time.monotonic() - started
    grown_mib = (_rss_kib(pid) - before) / 1024
    assert sent < 100, sent  # the server stopped reading long before 100 MB
    assert grown_mib < 20, grown_mib
    assert took < 10, took
    assert httpx.get(f"{base}/health", timeout=5).status_code == 200


def test_all_slots_busy_refuses_with_503_in_the_error_shape(quick: tuple[str, Proc]) -> None:
    base, _ = quick
    busy: list[socket.socket] = []
    try:
        for _ in range(20):  # a request whose body never comes: headers done, the slot is taken
            sock = _connect(base)
            sock.sendall(
                b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nX-Muxi-Client-Key: "
                + KEY.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            )
            busy.append(sock)
        time.sleep(0.3)
        with _connect(base) as extra:
            status, headers, body = _read_answer(extra)
        assert status == 503 and headers.get("retry-after") == "1"
        assert _error(body)["code"] == "SERVICE_UNAVAILABLE"
    finally:
        for s in busy:
            s.close()
    deadline = time.monotonic() + 5
    while True:  # the slots free up once those clients are gone
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_dribbled_header_is_cut_at_the_header_timeout(quick: tuple[str, Proc]) -> None:
    base, _ = quick
    with _connect(base) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        sock.settimeout(0.2)
        while time.monotonic() - started < 6:
            try:
                sock.sendall(b"X-a: b\r\n")
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
        took = time.monotonic() - started
    assert 1.4 <= took < 3.5, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    body = answer.partition(b"\r\n\r\n")[2]
    assert _error(body)["code"] == "REQUEST_TIMEOUT"


def test_silent_connection_is_closed_at_the_keepalive_timeout(quick: tuple[str, Proc]) -> None:
    base, _ = quick
    with _connect(base) as sock:
        started = time.monotonic()
        assert _closed_by_server(sock, 6)
        took = time.monotonic() - started
    assert 0.9 <= took < 3, took


def test_idle_keepalive_connection_is_closed_after_its_timeout(quick: tuple[str, Proc]) -> None:
    base, _ = quick
    with _connect(base) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = _read_answer(sock)
        assert status == 200 and headers.get("connection") != "close"
        served = time.monotonic()
        assert _closed_by_server(sock, 6)
        took = time.monotonic() - served
    assert 0.9 <= took < 3, took


def _send_ignoring_errors(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _flood(sock: socket.socket, head: bytes, *, megabytes: int) -> int:
    """Send `head` then up to `megabytes` MiB of header value; how many MiB went out."""
    sock.sendall(head)
    chunk = b"a" * 1024 * 1024
    sent = 0
    with contextlib.suppress(OSError):
        for _ in range(megabytes):
            sock.sendall(chunk)
            sent += 1
    return sent
