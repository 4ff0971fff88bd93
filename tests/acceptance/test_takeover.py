"""A SIGKILLed worker's request is taken over in seconds, not after its lease (30 s here).

SQLite: the only `errand serve` is killed while a request sits at 40 %, then started again: the
new process sees that the registered worker's process is gone (pid + start time) and runs the
request again at once. PostgreSQL: two `errand worker` processes; the one running the request
is killed; its database session ends with it, and the other sees its session lock free and
takes the request over within a few seconds. Both keep lease_seconds at 30, so a takeover by
lease expiry could not pass.

The agent writes `start <request> <attempt> <pid> <time>` to runs.log at each attempt's start;
attempt 1 reports 40 % and then waits (long past the test), later attempts finish at once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.procs import Proc, free_port, serving, wait_ready, write_formation

pytestmark = pytest.mark.slow

LEASE = 30
KEY = "takeover-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}
TAKEOVER_BOUND = 5.0
"""Seconds from the restart (SQLite) or the kill (PostgreSQL) to the new attempt's start: far
below the lease, with room for a loaded machine (measured: about 1 s)."""

AGENTS = r'''
import asyncio, os, time

_LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")


async def stuck(message, ctx):
    """Attempt 1 reports 40 % and hangs; a later attempt ends at once."""
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"start {ctx.request_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\n".encode())
    os.close(fd)
    if ctx.attempt == 1:
        ctx.progress(percent=40, message="40%")
        await asyncio.sleep(600)
    return f"done on attempt {ctx.attempt}"
'''


def formation(folder: Path, url: str, **storage: Any) -> Path:
    return write_formation(
        folder,
        {
            "name": "takeover",
            "keys": {"client": [KEY], "admin": ["takeover-admin-key"]},
            "storage": {"url": url, **storage},
            "async": {"mode": "async"},
            "workers": {"concurrency": 4, "lease_seconds": LEASE, "poll_interval": 0.5},
            "workflow": {"task_timeout": 900, "retry": {"max_attempts": 3, "initial_delay": 0.05}},
            "agents": [{"id": "stuck", "handler": "slow_agents:stuck"}],
        },
        AGENTS,
    )


def starts(folder: Path) -> list[tuple[str, int, int, float]]:
    """(request, attempt, pid, time) of every attempt start so far."""
    try:
        lines = (folder / "runs.log").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [
        (p[1], int(p[2]), int(p[3]), float(p[4])) for p in (line.split() for line in lines) if len(p) == 5
    ]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def submit_and_reach_40(base: str, folder: Path) -> str:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=10) as c:
        r = c.post("/v1/chat", json={"message": "hang at 40", "mode": "async"})
        assert r.status_code == 202, r.text
        rid: str = r.json()["request_id"]

        def at_40() -> bool:
            doc = c.get(f"/v1/requests/{rid}").json()
            return doc["status"] == "processing" and (doc.get("progress") or {}).get("percent") == 40

        wait_for(at_40, 20, "the request at 40 %")
    assert [s[1] for s in starts(folder) if s[0] == rid] == [1]
    return rid


def second_start(folder: Path, rid: str) -> tuple[str, int, int, float] | None:
    return next((s for s in starts(folder) if s[0] == rid and s[1] == 2), None)


def final_document(base: str, rid: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as c:
        doc: dict[str, Any] = c.get(f"/v1/requests/{rid}", params={"wait": 20}).json()
    return doc


def assert_taken_over(doc: dict[str, Any], retry_events: list[Any]) -> None:
    """Completed by attempt 2; attempt 1 counted as one failed attempt, WorkerLost."""
    assert doc["status"] == "completed", doc
    assert doc["result"]["text"] == "done on attempt 2"
    [data] = retry_events
    error = data if isinstance(data, dict) else json.loads(data)
    assert error["error"]["type"] == "WorkerLost" and "died" in error["error"]["message"], error


RETRIES = "SELECT data FROM events WHERE request_id = {} AND type = 'retry' ORDER BY seq"


def sqlite_retries(db: Path, rid: str) -> list[Any]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in con.execute(RETRIES.format("?"), (rid,))]
    finally:
        con.close()


def test_sqlite_restart_reruns_a_killed_request_at_once(tmp_path: Path) -> None:
    cfg = formation(tmp_path, "sqlite:///takeover.db")
    with serving(cfg, tmp_path / "serve1.log") as (base, first):
        rid = submit_and_reach_40(base, tmp_path)
        first.kill()
    restarted = time.monotonic()
    restarted_wall = time.time()
    with serving(cfg, tmp_path / "serve2.log") as (base, second):
        ready_s = time.monotonic() - restarted
        found = wait_for(lambda: second_start(tmp_path, rid), TAKEOVER_BOUND + ready_s, "the second attempt")
        assert second.p is not None and found[2] == second.p.pid
        doc = final_document(base, rid)
    took = found[3] - restarted_wall
    print(
        f"\nsqlite: restart -> attempt 2 started in {took:.2f}s (ready after {ready_s:.2f}s; lease {LEASE}s)"
    )
    assert took < TAKEOVER_BOUND + ready_s
    assert_taken_over(doc, sqlite_retries(tmp_path / "takeover.db", rid))


async def _pg_retries(url: str, rid: str) -> list[Any]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return [json.loads(row["data"]) for row in await conn.fetch(RETRIES.format("$1"), rid)]
    finally:
        await conn.close()


async def _pg_leased_by(url: str, rid: str) -> str | None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        owner: str | None = await conn.fetchval("SELECT lease_owner FROM requests WHERE id = $1", rid)
        return owner
    finally:
        await conn.close()


@pytest.mark.postgres
def test_postgres_worker_killed_is_taken_over_by_the_other(tmp_path: Path, pg_fresh_url: str) -> None:
    cfg = formation(tmp_path, pg_fresh_url, pool_size=3)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = Proc(["serve", "--config", str(cfg), "--port", str(port), "--no-workers"], tmp_path / "api.log")
    procs = [api.start()]
    try:
        wait_ready(base, api, timeout=60)
        workers = [
            Proc(["worker", "--config", str(cfg)], tmp_path / f"worker{n}.log").start() for n in range(2)
        ]
        procs += workers
        rid = submit_and_reach_40(base, tmp_path)
        [(_, _, pid, _)] = [s for s in starts(tmp_path) if s[0] == rid]
        victim = next(w for w in workers if w.p is not None and w.p.pid == pid)
        survivor = next(w for w in workers if w is not victim)
        assert asyncio.run(_pg_leased_by(pg_fresh_url, rid)) is not None
        victim.kill()
        killed_wall = time.time()
        found = wait_for(lambda: second_start(tmp_path, rid), TAKEOVER_BOUND, "the takeover by the survivor")
        assert survivor.p is not None and found[2] == survivor.p.pid
        doc = final_document(base, rid)
        took = found[3] - killed_wall
        print(f"\npostgres: SIGKILL -> attempt 2 started on the other worker in {took:.2f}s (lease {LEASE}s)")
        assert took < TAKEOVER_BOUND
        assert_taken_over(doc, asyncio.run(_pg_retries(pg_fresh_url, rid)))
    except BaseException:
        for path in sorted(tmp_path.glob("*.log")):
            print(f"== {path.name}\n{path.read_text()[-3000:]}")
        raise
    finally:
        for proc in procs:
            proc.stop()
