"""SIGKILL `errand serve` mid-run: every accepted request still completes, exactly once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import serving, write_formation

pytestmark = pytest.mark.slow

AGENTS = '''
import asyncio, os, time

async def slow(message, ctx):
    """Takes ~1.5 s in small steps; logs each start and end to runs.log."""
    log = os.path.join(os.path.dirname(__file__), "runs.log")
    with open(log, "a") as f:
        f.write(f"start {ctx.request_id} {ctx.attempt} {os.getpid()}\\n")
    for i in range(15):
        ctx.progress(percent=i * 100 / 15, message=f"step {i}")
        await asyncio.sleep(0.1)
    with open(log, "a") as f:
        f.write(f"end {ctx.request_id} {ctx.attempt} {os.getpid()}\\n")
    return f"done {message}"
'''

KEY = "crash-client-key"


def formation(tmp: Path) -> Path:
    return write_formation(
        tmp,
        {
            "name": "crash",
            "keys": {"client": [KEY], "admin": ["crash-admin-key"]},
            "storage": {"url": "sqlite:///crash.db"},
            "workers": {"concurrency": 20, "lease_seconds": 2, "poll_interval": 0.2},
            "workflow": {"task_timeout": 30, "retry": {"max_attempts": 3, "initial_delay": 0.1}},
            "agents": [{"id": "slow", "handler": "slow_agents:slow"}],
        },
        AGENTS,
    )


def terminal_events(db: Path) -> dict[str, list[str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT request_id, type FROM events WHERE type IN ('completed','failed','cancelled')"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for rid, typ in rows:
        out.setdefault(rid, []).append(typ)
    return out


def test_sigkill_mid_run_loses_nothing(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    headers = {"X-Muxi-Client-Key": KEY}
    ids: list[str] = []
    with serving(cfg, tmp_path / "serve1.log") as (base, proc):
        with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
            for i in range(50):
                r = c.post("/v1/chat", json={"message": f"job {i}", "mode": "async"})
                assert r.status_code == 202, r.text
                ids.append(r.json()["request_id"])
            # let some finish and many be mid-run, then kill without any shutdown code
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                docs = [c.get(f"/v1/requests/{i}").json() for i in ids]
                done = sum(d["status"] == "completed" for d in docs)
                running = sum(d["status"] == "processing" for d in docs)
                if done >= 5 and running >= 5:
                    break
                time.sleep(0.05)
            assert running >= 5, "the kill must happen while requests are running"
        proc.kill()
    killed_done = done

    with serving(cfg, tmp_path / "serve2.log") as (base, _proc):
        with httpx.Client(base_url=base, headers=headers, timeout=70) as c:
            final = {}
            for rid in ids:
                final[rid] = c.get(f"/v1/requests/{rid}", params={"wait": 60}).json()

    statuses = {rid: d["status"] for rid, d in final.items()}
    assert all(s == "completed" for s in statuses.values()), statuses
    assert all(d["result"]["text"].startswith("done job") for d in final.values())
    terminals = terminal_events(tmp_path / "crash.db")
    assert set(terminals) == set(ids)
    assert all(t == ["completed"] for t in terminals.values()), "a request ended twice"
    runs = (tmp_path / "runs.log").read_text().splitlines()
    restarted = {line.split()[1] for line in runs if line.startswith("start") and line.split()[2] != "1"}
    assert restarted, "some requests were in flight at the kill and must have been run again"
    assert killed_done < 50
