"""A real `errand serve` on SQLite whose database goes bad under it: files deleted, a foreign
exclusive lock, a full disk. Every submit then answers 503 (never a 202 that nothing keeps),
`/ready` answers 503, and a locked database answers within the configured bound.

The disk is made "full" with RLIMIT_FSIZE lowered on the running server (`prlimit(2)`, no
root needed): the WAL cannot grow, so SQLite's writes fail as they would on a full disk (EFBIG
there, ENOSPC on a real disk: both are write errors SQLite reports). The soft limit is raised
again afterwards to show the server recovers without a restart.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from errand.store.postgres import PostgresStore
from tests.support.pg_fixtures import admin, run_sync
from tests.support.procs import Proc, free_port, serving, write_formation

pytestmark = pytest.mark.slow

AGENTS = """
async def echo(message, ctx):
    return f"echo {message}"
"""
KEY = "health-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}
BUSY_TIMEOUT = 1.0
SLACK = 1.5
"""Beyond the configured wait: scheduling on a loaded 2-core machine, the HTTP round trip."""


def formation(tmp: Path, **sections: dict[str, Any]) -> Path:
    data: dict[str, Any] = {
        "name": "health",
        "keys": {"client": [KEY], "admin": ["health-admin-key"]},
        "storage": {"url": "sqlite:///health.db", "sqlite_busy_timeout_seconds": BUSY_TIMEOUT},
        "workers": {"concurrency": 4, "poll_interval": 0.2},
        "agents": [{"id": "echo", "handler": "slow_agents:echo"}],
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return write_formation(tmp, data, AGENTS)


def submit(c: httpx.Client, message: str = "hi") -> httpx.Response:
    return c.post("/v1/chat", json={"message": message, "mode": "async"})


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE", r.text
    assert "Retry-After" in r.headers


def wait_status(c: httpx.Client, request_id: str, status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc: dict[str, Any] = c.get(f"/v1/requests/{request_id}").json()
        if doc.get("status") == status:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{request_id} not {status} after {timeout}s: {doc}")


# -- the file deleted under the server --------------------------------------------------------------
@pytest.mark.parametrize("deleted", [("",), ("-wal",), ("-shm",), ("", "-wal", "-shm")], ids=str)
def test_deleted_database_files_are_refused_not_acknowledged(
    tmp_path: Path, deleted: tuple[str, ...]
) -> None:
    db = tmp_path / "health.db"
    with serving(formation(tmp_path), tmp_path / "serve.log") as (base, proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            first = submit(c)
            assert first.status_code == 202
            # done first: an attempt whose outcome cannot be recorded holds shutdown for its grace
            wait_status(c, first.json()["request_id"], "completed")
            for suffix in deleted:
                os.unlink(f"{db}{suffix}")
            answers = [submit(c, f"after {i}") for i in range(5)]
            for r in answers:
                assert_unavailable(r)
            ready = httpx.get(f"{base}/ready", timeout=15)
            assert ready.status_code == 503, ready.text
            assert "while errand had it open" in ready.json()["reason"]
        log = proc.tail(400)
        assert "was deleted while errand had it open" in log
        assert log.count("refused, the store is unavailable") >= len(answers)  # each names its id


# -- a foreign exclusive lock -------------------------------------------------------------------------
def test_a_locked_database_answers_503_within_the_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "health.db"
    with serving(formation(tmp_path), tmp_path / "serve.log") as (base, _proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as c:
            assert submit(c).status_code == 202
            foreign = sqlite3.connect(db, isolation_level=None)  # as `sqlite3 health.db` would
            try:
                foreign.execute("BEGIN EXCLUSIVE")
                timings = concurrent_submits(base, 6)
                for r, seconds in timings:
                    assert_unavailable(r)
                    assert seconds < BUSY_TIMEOUT + SLACK, f"a locked submit took {seconds:.2f}s"
                started = time.monotonic()
                ready = httpx.get(f"{base}/ready", timeout=30)
                assert ready.status_code == 503, ready.text
                assert time.monotonic() - started < BUSY_TIMEOUT + SLACK
            finally:
                foreign.rollback()
                foreign.close()
            assert submit(c).status_code == 202  # the lock is gone: served again, no restart
            assert httpx.get(f"{base}/ready", timeout=15).status_code == 200


def concurrent_submits(base: str, n: int) -> list[tuple[httpx.Response, float]]:
    """n submits at once (the ones queued behind a waiting batch must not wait twice)."""
    out: list[tuple[httpx.Response, float]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        started = time.monotonic()
        r = httpx.post(
            f"{base}/v1/chat", json={"message": f"m{i}", "mode": "async"}, headers=HEADERS, timeout=30
        )
        with lock:
            out.append((r, time.monotonic() - started))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for i, t in enumerate(threads):
        t.start()
        time.sleep(0.1 if i < n // 2 else 0)  # some arrive while an earlier batch already waits
    for t in threads:
        t.join(40)
    assert len(out) == n
    return out


# -- a full disk --------------------------------------------------------------------------------------
def test_a_full_disk_fails_submits_and_ready_then_recovers(tmp_path: Path) -> None:
    wal = tmp_path / "health.db-wal"
    with serving(formation(tmp_path), tmp_path / "serve.log") as (base, proc):
        assert proc.p is not None
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            # ~1.5 MB of WAL: well above the log file, well below the 4 MB auto-checkpoint (after
            # which SQLite would write the WAL from its start again, below the limit)
            ids = [submit(c, "x" * 120_000).json()["request_id"] for _ in range(4)]
            for request_id in ids:
                wait_status(c, request_id, "completed")
            time.sleep(0.3)  # the worker's last writes of those are in
            limit = wal.stat().st_size
            assert (tmp_path / "serve.log").stat().st_size < limit // 4 < limit < 4_000_000
            _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.prlimit(proc.p.pid, resource.RLIMIT_FSIZE, (limit, hard))
            try:
                for i in range(3):
                    assert_unavailable(submit(c, f"full {i} " + "y" * 10_000))
                ready = httpx.get(f"{base}/ready", timeout=15)
                assert ready.status_code == 503, ready.text
            finally:
                resource.prlimit(proc.p.pid, resource.RLIMIT_FSIZE, (hard, hard))
            again = submit(c)
            assert again.status_code == 202, again.text
            wait_status(c, again.json()["request_id"], "completed")
            assert httpx.get(f"{base}/ready", timeout=15).status_code == 200


# -- result_ttl holds on every read -------------------------------------------------------------------
def test_result_ttl_answers_410_without_any_purge(tmp_path: Path) -> None:
    cfg = formation(tmp_path, **{"async": {"result_ttl": "2s", "purge_interval": "1h"}})
    with serving(cfg, tmp_path / "serve.log") as (base, _proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            request_id = submit(c).json()["request_id"]
            doc = wait_status(c, request_id, "completed")
            assert doc["result"]["text"] == "echo hi"
            ended = doc["completed_at"]
            listed = [d["request_id"] for d in c.get("/v1/requests").json()["requests"]]
            assert request_id in listed
            time.sleep(max(0.0, ended + 2.2 - time.time()))
            for path in (f"/v1/requests/{request_id}", f"/v1/requests/{request_id}/events"):
                r = c.get(path)
                assert r.status_code == 410, (path, r.text)
                assert r.json()["error"]["code"] == "REQUEST_EXPIRED"
            listed = [d["request_id"] for d in c.get("/v1/requests").json()["requests"]]
            assert request_id not in listed
        assert stored(tmp_path / "health.db", request_id)[0] is None, "no purge ran: the row is intact"


def test_purge_interval_is_honoured(tmp_path: Path) -> None:
    cfg = formation(tmp_path, **{"async": {"result_ttl": "1s", "purge_interval": "0.5s"}})
    with serving(cfg, tmp_path / "serve.log") as (base, _proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            request_id = submit(c).json()["request_id"]
            wait_status(c, request_id, "completed")
            deadline = time.monotonic() + 6
            while stored(tmp_path / "health.db", request_id)[0] is None:
                assert time.monotonic() < deadline, "the purge did not run every 0.5 s"
                time.sleep(0.1)
            expired_at, result = stored(tmp_path / "health.db", request_id)
            assert expired_at is not None and result is None


def stored(db: Path, request_id: str) -> tuple[float | None, str | None]:
    """(expired_at, result) of the row, read straight from the file."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT expired_at, result FROM requests WHERE id = ?", (request_id,)).fetchone()
    finally:
        con.close()
    assert row is not None, request_id
    return row[0], row[1]


# -- PostgreSQL: reads answer, writes do not ---------------------------------------------------------
@pytest.mark.postgres
def test_postgres_ready_fails_when_the_database_is_read_only(tmp_path: Path, pg_fresh_url: str) -> None:
    """A database that answers reads but refuses writes (a standby promoted wrongly, a read-only
    switch): `/ready` asked only `SELECT 1` and said 200; the write probe says 503."""
    run_sync(_migrate(pg_fresh_url))
    name = pg_fresh_url.rsplit("/", 1)[1].split("?", 1)[0]
    run_sync(admin(pg_fresh_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    cfg = formation(tmp_path, storage={"url": pg_fresh_url})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = Proc(["serve", "--config", str(cfg), "--port", str(port), "--no-migrate"], tmp_path / "pg.log")
    proc.start()
    try:
        ready = wait_answer(base, proc)
        assert ready.status_code == 503, ready.text
        assert "read-only" in ready.json()["reason"], ready.text
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            assert_unavailable(submit(c))
    finally:
        proc.stop()


async def _migrate(url: str) -> None:
    store = await PostgresStore.open(url, migrate=True)
    await store.close()


def wait_answer(base: str, proc: Proc, timeout: float = 30) -> httpx.Response:
    """The first answer of /ready (the server is up, whatever it says)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.p is not None and proc.p.poll() is None, proc.tail()
        try:
            return httpx.get(f"{base}/ready", timeout=5)
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(proc.tail())
