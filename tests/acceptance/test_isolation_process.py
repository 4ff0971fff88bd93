"""`isolation: process` against a real `errand serve`: an agent that blocks, crashes, is killed
from outside or is cancelled hurts only its own request; the watchdog names an inline blocker."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.procs import Proc, serving, write_formation

pytestmark = pytest.mark.slow

AGENTS = '''
import asyncio, ctypes, os, signal, time
from pathlib import Path

HERE = Path(__file__).parent

def _pid(ctx):
    (HERE / f"{ctx.request_id}.{ctx.attempt}.pid").write_text(str(os.getpid()))

async def block(message, ctx):
    """Blocks its event loop: the bug an inline agent would inflict on the whole server."""
    _pid(ctx)
    time.sleep(float(message))
    return "woke up"

async def stubborn(message, ctx):
    """Ignores SIGTERM and blocks on its first attempt; answers at once on the next."""
    if ctx.attempt > 1:
        return "second attempt"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _pid(ctx)
    time.sleep(60)
    return "never"

async def victim(message, ctx):
    """Waits to be SIGKILLed from outside on its first attempt."""
    if ctx.attempt > 1:
        return f"survived attempt {ctx.attempt}"
    _pid(ctx)
    await asyncio.sleep(60)
    return "never"

async def exits(message, ctx):
    os._exit(1)

async def segfaults(message, ctx):
    ctypes.string_at(0)

def flaky(message, ctx):
    """A sync handler: a transient error first (retried, as inline), then an answer."""
    if ctx.attempt == 1:
        raise ConnectionError("upstream reset")
    return {"text": f"flaky ok {ctx.attempt}", "pid": os.getpid()}

async def chatty(message, ctx):
    ctx.progress(percent=10, message="starting", step=1, total_steps=2)
    await ctx.checkpoint()
    ctx.emit("hello ")
    ctx.emit("world")
    ctx.event("tool_call", {"name": "lookup", "pid": os.getpid()})
    await ctx.checkpoint()
    ctx.progress(percent=90, message="almost", step=2, total_steps=2)
    opts = ctx.metadata.get("agent_options")
    return {"text": "chatty done", "options": opts, "pid": os.getpid()}

async def echo(message, ctx):
    return message

async def inline_block(message, ctx):
    time.sleep(1.5)
    return "blocked the loop"
'''

KEY = "isolation-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}


def _agent(id: str, handler: str, **extra: object) -> dict[str, object]:
    return {"id": id, "handler": f"slow_agents:{handler}", **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Proc, Path]]:
    folder = tmp_path_factory.mktemp("isolation")
    process = {"isolation": "process"}
    cfg = write_formation(
        folder,
        {
            "name": "isolation",
            "keys": {"client": [KEY], "admin": ["isolation-admin-key"]},
            "storage": {"url": "sqlite:///iso.db"},
            "workers": {"concurrency": 16, "lease_seconds": 5, "poll_interval": 0.2, "kill_grace_seconds": 2},
            "workflow": {"task_timeout": 3, "retry": {"max_attempts": 2, "initial_delay": 0.05}},
            "agents": [
                _agent("echo", "echo", default=True),
                _agent("block", "block", **process),
                _agent("stubborn", "stubborn", **process),
                _agent("victim", "victim", **process),
                _agent("exits", "exits", **process),
                _agent("segfaults", "segfaults", **process),
                _agent("flaky", "flaky", **process),
                _agent("chatty", "chatty", options={"colour": "teal"}, **process),
            ],
        },
        AGENTS,
    )
    with serving(cfg, folder / "serve.log") as (base, proc):
        yield base, proc, folder


def submit(c: httpx.Client, agent: str, message: str = "x") -> str:
    r = c.post("/v1/chat", json={"message": message, "agent_id": agent, "mode": "async"})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def final(c: httpx.Client, rid: str) -> dict[str, object]:
    doc: dict[str, object] = c.get(f"/v1/requests/{rid}", params={"wait": 30}).json()
    assert doc["status"] in ("completed", "failed", "cancelled"), doc
    return doc


def wait_pid(folder: Path, rid: str, attempt: int = 1, timeout: float = 15) -> int:
    path = folder / f"{rid}.{attempt}.pid"
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"agent of {rid} never started"
        time.sleep(0.02)
    return int(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pid: int, seconds: float) -> float:
    started = time.monotonic()
    while alive(pid):
        assert time.monotonic() - started < seconds, f"agent process {pid} still alive after {seconds}s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_blocking_agent_leaves_health_fast_and_cancel_kills_it(server: tuple[str, Proc, Path]) -> None:
    base, _proc, folder = server
    with httpx.Client(base_url=base, headers=HEADERS, timeout=40) as c:
        rid = submit(c, "block", "30")
        pid = wait_pid(folder, rid)
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert c.get("/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
        assert slowest < 0.5, f"/health took {slowest:.2f}s while an isolated agent blocked"
        beside = submit(c, "echo", "beside")
        assert final(c, beside)["status"] == "completed"
        r = c.delete(f"/v1/requests/{rid}")
        assert r.status_code == 200, r.text
        gone_within(pid, 1.8)  # SIGTERM ends even time.sleep at once; SIGKILL would wait 2 s
        assert final(c, rid)["status"] == "cancelled"
    assert f"request {rid} outlived SIGTERM" not in (folder / "serve.log").read_text()


def test_task_timeout_kills_a_child_that_ignores_sigterm(server: tuple[str, Proc, Path]) -> None:
    base, _proc, folder = server
    with httpx.Client(base_url=base, headers=HEADERS, timeout=40) as c:
        rid = submit(c, "stubborn")
        pid = wait_pid(folder, rid)
        started = time.monotonic()
        gone_within(pid, 8.0)  # task_timeout 3 s, then SIGTERM (ignored), SIGKILL 2 s later
        doc = final(c, rid)
        assert doc["status"] == "completed", doc
        assert doc["result"]["text"] == "second attempt"  # type: ignore[index]
        assert doc["attempts"] == 2
        assert time.monotonic() - started < 10.0
    assert f"request {rid} outlived SIGTERM by 2.0s; SIGKILL" in (folder / "serve.log").read_text()


def test_crashes_fail_only_their_request(server: tuple[str, Proc, Path]) -> None:
    base, proc, folder = server
    with httpx.Client(base_url=base, headers=HEADERS, timeout=40) as c:
        victim = submit(c, "victim")
        exits = submit(c, "exits")
        segv = submit(c, "segfaults")
        flaky = submit(c, "flaky")
        others = [submit(c, "echo", f"other {i}") for i in range(20)]
        os.kill(wait_pid(folder, victim), signal.SIGKILL)

        docs = {rid: final(c, rid) for rid in [victim, exits, segv, flaky, *others]}
        assert proc.p is not None and proc.p.poll() is None, "the server must survive its agents"
        assert c.get("/health").status_code == 200
    for i, rid in enumerate(others):
        assert docs[rid]["status"] == "completed" and docs[rid]["result"]["text"] == f"other {i}"  # type: ignore[index]

    assert docs[exits]["status"] == "failed" and docs[exits]["attempts"] == 1
    assert docs[exits]["error"]["type"] == "AgentProcessCrashed"  # type: ignore[index]
    assert "exited with code 1" in docs[exits]["error"]["message"]  # type: ignore[index]
    assert docs[segv]["status"] == "failed" and docs[segv]["attempts"] == 1
    assert docs[segv]["error"]["message"] == "agent process killed by SIGSEGV"  # type: ignore[index]
    assert docs[segv]["error"]["retryable"] is False  # type: ignore[index]

    assert docs[victim]["status"] == "completed" and docs[victim]["attempts"] == 2  # SIGKILL: retried
    assert docs[victim]["result"]["text"] == "survived attempt 2"  # type: ignore[index]
    assert docs[flaky]["status"] == "completed" and docs[flaky]["attempts"] == 2  # ConnectionError
    assert docs[flaky]["result"]["pid"] != proc.p.pid  # type: ignore[index]
    log = (folder / "serve.log").read_text()
    assert f"agent process killed by SIGKILL (request {victim})" in log
    assert f"agent process killed by SIGSEGV (request {segv})" in log
    assert "ConnectionError: upstream reset" in log  # the child's traceback reaches the log


def test_a_killed_server_leaves_no_agent_running(tmp_path: Path) -> None:
    """SIGKILL of the server alone (not its group) ends its agents' processes (PR_SET_PDEATHSIG,
    else the end of their stdin), so a request taken over elsewhere never runs beside an orphan
    of its last attempt."""
    cfg = write_formation(
        tmp_path,
        {
            "name": "orphans",
            "keys": {"client": [KEY]},
            "storage": {"url": "sqlite:///orphans.db"},
            "agents": [_agent("block", "block", isolation="process")],
        },
        AGENTS,
    )
    with serving(cfg, tmp_path / "serve.log") as (base, proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=10) as c:
            rid = submit(c, "block", "30")
            pid = wait_pid(tmp_path, rid)
        assert proc.p is not None
        os.kill(proc.p.pid, signal.SIGKILL)
        proc.p.wait(10)
        gone_within(pid, 3.0)


def read_events(c: httpx.Client, rid: str) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    kind = ""
    with c.stream("GET", f"/v1/requests/{rid}/events") as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((kind, line[len("data: ") :]))
    return events


def test_progress_content_and_events_cross_the_boundary(server: tuple[str, Proc, Path]) -> None:
    base, proc, _folder = server
    with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as c:
        rid = submit(c, "chatty")
        doc = final(c, rid)
        events = read_events(c, rid)
    assert doc["status"] == "completed", doc
    result = doc["result"]
    assert result["text"] == "chatty done" and result["agent"] == "chatty"  # type: ignore[index]
    assert result["options"] == {"colour": "teal"}  # type: ignore[index]
    assert proc.p is not None and result["pid"] != proc.p.pid  # type: ignore[index]
    kinds = [k for k, _ in events]
    assert kinds.count("progress") == 2, events
    assert "tool_call" in kinds and kinds[-1] == "completed"
    assert any(k == "content" and "hello " in d for k, d in events)
    text = "".join(d for k, d in events if k == "content")
    assert "hello" in text and "world" in text
    progress = [d for k, d in events if k == "progress"]
    assert '"almost"' in progress[-1] and "90" in progress[-1]
    # the last report crossed the boundary (the event above); a completed request reads 100 %
    assert doc["progress"] == {"percent": 100.0, "message": "almost", "step": 2, "total_steps": 2}


def test_watchdog_logs_the_stack_of_an_inline_blocker(tmp_path: Path) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "watchdog",
            "keys": {"client": [KEY]},
            "storage": {"url": "sqlite:///dog.db"},
            "workers": {"block_warning_seconds": 0.5},
            "agents": [_agent("inline_block", "inline_block")],
        },
        AGENTS,
    )
    log = tmp_path / "serve.log"
    with serving(cfg, log) as (base, _proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as c:
            rid = submit(c, "inline_block")
            assert final(c, rid)["status"] == "completed"
            deadline = time.monotonic() + 5
            while "ran again after being blocked" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
    text = log.read_text()
    assert "event loop blocked for" in text and f"by task errand-attempt-{rid}" in text
    assert f"requests running: {rid}" in text
    assert "in inline_block" in text and "time.sleep(1.5)" in text  # the author's own line


def test_the_attempt_log_keeps_the_traceback_from_the_agent_process(server: tuple[str, Proc, Path]) -> None:
    base, _proc, _folder = server
    with httpx.Client(base_url=base, headers=HEADERS, timeout=40) as c:
        rid = submit(c, "flaky")
        assert final(c, rid)["status"] == "completed"
    r = httpx.get(f"{base}/v1/requests/{rid}/attempts", headers={"X-Muxi-Admin-Key": "isolation-admin-key"})
    assert r.status_code == 200, r.text
    first, second = r.json()["attempts"]
    assert first["outcome"] == "retried" and second["outcome"] == "completed"
    assert first["error"] == {"type": "ConnectionError", "message": "upstream reset"}
    assert "raised in the agent process" in first["traceback"]  # the child's frames, not only the re-raise
    assert 'raise ConnectionError("upstream reset")' in first["traceback"]
