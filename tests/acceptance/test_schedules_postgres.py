"""Schedules with real processes: two `errand worker` processes on one PostgreSQL database, each
running a scheduler, and a trigger with `schedule: {every: 1s}`.

Each fire time fires exactly one request (one schedule row although both processes synced the
file at once; fire times consecutive, none twice), the firings run as ordinary requests, and
when one process is SIGKILLed the other goes on firing without a gap.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from tests.support.procs import Proc, write_formation

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

AGENTS = """
async def work(message, ctx):
    return "did " + message
"""
TRIGGER = "---\nschedule: {every: 1s, data: {what: tick}, overlap: enqueue}\n---\n${{ data.what }}\n"


async def rows(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


def test_two_workers_fire_each_second_exactly_once(tmp_path: Path, pg_fresh_url: str) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "sched",
            "keys": {"admin": ["sched-admin-key"]},
            "storage": {"url": pg_fresh_url, "pool_size": 4},
            "workers": {"concurrency": 4, "poll_interval": 0.2},
            "schedules": {"tick": 0.2},
            "agents": [{"id": "work", "handler": "slow_agents:work", "default": True}],
        },
        AGENTS,
    )
    (tmp_path / "triggers").mkdir()
    (tmp_path / "triggers" / "tick.md").write_text(TRIGGER)
    env = {"PYTHONPATH": str(tmp_path)}
    workers = [Proc(["worker", "--config", str(cfg)], tmp_path / f"w{n}.log", env).start() for n in (1, 2)]
    try:
        time.sleep(6)
        workers[0].kill()  # SIGKILL: the other scheduler goes on alone
        time.sleep(3)
    finally:
        for w in workers:
            w.stop()
    schedules = asyncio.run(rows(pg_fresh_url, "SELECT id, name, source FROM schedules"))
    assert [(r["name"], r["source"]) for r in schedules] == [("tick", "file")], workers[1].tail()
    fired = asyncio.run(
        rows(pg_fresh_url, "SELECT id, status, metadata FROM requests WHERE kind = 'schedule' ORDER BY id")
    )
    times = [round(float(json.loads(r["metadata"])["fire_at"])) for r in fired]
    assert Counter(times).most_common(1)[0][1] == 1  # no fire time twice
    assert len(times) >= 6, (times, workers[1].tail())
    assert sorted(times) == list(range(min(times), max(times) + 1))  # every second, no gap
    done = [r for r in fired if r["status"] == "completed"]
    assert len(done) >= len(fired) - 2  # ordinary requests, run by the workers
