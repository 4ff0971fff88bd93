"""SIGKILL an `errand worker` that fires a schedule every second on SQLite, three times, and
restart it each time: no firing is lost or doubled.

A firing is one transaction with its request row, so after every SIGKILL the schedule row and
the requests agree: the last firing the row names exists, no request has a fire time the row
has not passed yet, and no fire time has two requests. While a process runs, no second is
missed (gaps only span the kills), and the firings cut mid-run are taken over and complete.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.procs import Proc, write_formation

pytestmark = pytest.mark.slow

AGENTS = """
import asyncio

async def work(message, ctx):
    await asyncio.sleep(0.3)
    return "did " + message
"""
TRIGGER = "---\nschedule: {every: 1s, data: {what: tick}, overlap: enqueue}\n---\n${{ data.what }}\n"
KILLS = 3


def fired(db: Path) -> list[tuple[float, str, str]]:
    """(fire time, request id, status) of every firing, by fire time."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT json_extract(metadata, '$.fire_at'), id, status FROM requests "
            "WHERE kind = 'schedule' ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return [(float(t), rid, status) for t, rid, status in rows]


def schedule_row(db: Path) -> tuple[str | None, float | None]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = con.execute("SELECT last_request_id, next_fire_at FROM schedules").fetchall()
    finally:
        con.close()
    assert len(found) == 1, found
    return found[0][0], found[0][1]


def wait_firings(db: Path, more_than: int, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # not there or not migrated yet
            if len(fired(db)) > more_than:
                return
        time.sleep(0.05)
    raise AssertionError(f"no new firing after {more_than}: {proc.tail()}")


def check_consistent(db: Path) -> None:
    """What a SIGKILL must never leave: a row that moved past a firing it has no request for,
    a request the row has not moved past, or two requests for one time."""
    rows = fired(db)
    last_id, next_fire_at = schedule_row(db)
    assert rows and last_id == rows[-1][1], (last_id, rows[-3:])
    assert next_fire_at is not None and next_fire_at > rows[-1][0]
    assert Counter(t for t, _, _ in rows).most_common(1)[0][1] == 1


def test_sigkilled_schedulers_lose_and_double_no_firing(tmp_path: Path) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "sched-kill",
            "keys": {"admin": ["sched-kill-admin-key"]},
            "storage": {"url": "sqlite:///sched.db"},
            "workers": {"concurrency": 8, "poll_interval": 0.2, "lease_seconds": 2},
            "schedules": {"tick": 0.05},
            "agents": [{"id": "work", "handler": "slow_agents:work", "default": True}],
        },
        AGENTS,
    )
    (tmp_path / "triggers").mkdir()
    (tmp_path / "triggers" / "tick.md").write_text(TRIGGER)
    db = tmp_path / "sched.db"
    env = {"PYTHONPATH": str(tmp_path)}
    proc = Proc(["worker", "--config", str(cfg)], tmp_path / "worker.log", env)
    windows: list[tuple[float, float]] = []  # (last fire time before a kill, first after restart)
    try:
        proc.start()
        for n in range(KILLS):
            wait_firings(db, 2 if n == 0 else len(fired(db)) + 1, proc)
            time.sleep(0.3 * n)  # a different point of the second each time
            proc.kill()
            check_consistent(db)
            before = fired(db)[-1][0]
            proc.start()
            wait_firings(db, len(fired(db)), proc)
            windows.append((before, fired(db)[len([r for r in fired(db) if r[0] <= before])][0]))
        wait_firings(db, len(fired(db)) + 2, proc)
        deadline = time.monotonic() + 15  # the firings cut by the kills are taken over and end
        while time.monotonic() < deadline and any(s != "completed" for _, _, s in fired(db)[:-3]):
            time.sleep(0.1)
    finally:
        proc.stop()
    check_consistent(db)
    rows = fired(db)
    times = [t for t, _, _ in rows]
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a > 1.0]
    assert all(gap in windows for gap in gaps), (gaps, windows)  # only across a kill
    assert all(s == "completed" for _, _, s in rows[:-3]), (rows, proc.tail())
