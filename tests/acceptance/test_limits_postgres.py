"""Caps across processes on PostgreSQL: two `errand worker` processes (8 slots each) on one
database never run more than limits.max_running in all, nor more than max_running_per_user of
one user, and the agents' own max_concurrency; measured from the agents' own start/end log.
Two API processes taking one user's submits at once never queue more than max_queued_per_user."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_scaleout_postgres import (
    AGENTS,
    KEY,
    errand_migrate,
    fleet,
    message,
    read_runs,
    statuses,
    submit,
)
from tests.support.pg_fixtures import admin, with_database
from tests.support.procs import write_formation

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MAX_RUNNING, PER_USER, QUEUE_CAP = 5, 2, 7
LIMITS = {"max_running": MAX_RUNNING, "max_running_per_user": PER_USER}


def formation(folder: Path, url: str, limits: dict[str, int] = LIMITS) -> Path:
    return write_formation(
        folder,
        {
            "name": "caps",
            "keys": {"client": [KEY], "admin": ["caps-admin-key"]},
            "storage": {"url": url, "pool_size": 5},
            "async": {"mode": "async"},
            "workers": {"concurrency": 8, "lease_seconds": 5, "poll_interval": 0.1},
            "limits": limits,
            "agents": [{"id": "work", "handler": "slow_agents:work"}],
        },
        AGENTS,
    )


def peak(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    now = best = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def test_two_worker_processes_respect_every_cap(
    tmp_path: Path, pg_server: str, _pg_databases: object
) -> None:
    name = _pg_databases.new_name()  # type: ignore[attr-defined]
    asyncio.run(admin(pg_server, f'CREATE DATABASE "{name}"'))
    cfg = formation(tmp_path, with_database(pg_server, name))
    assert errand_migrate(cfg).returncode == 0
    owner: dict[str, str] = {}
    with fleet(tmp_path, cfg) as f:
        ((base, _api),) = f.apis(1)
        workers = f.workers(2)
        for user in ("a", "b", "c", "d"):
            with httpx.Client(base_url=base, headers={"X-Muxi-Client-Key": KEY, "X-Muxi-User-Id": user}) as c:
                for _ in range(6):
                    rid = c.post("/v1/chat", json={"message": message(0.3), "mode": "async"}).json()[
                        "request_id"
                    ]
                    owner[rid] = user
        deadline = time.monotonic() + 60
        while sum(r.kind == "end" for r in read_runs(tmp_path)) < len(owner):
            assert time.monotonic() < deadline, f.tails()
            time.sleep(0.1)
    runs = read_runs(tmp_path)
    starts = {r.rid: r.t for r in runs if r.kind == "start"}
    ends = {r.rid: r.t for r in runs if r.kind == "end"}
    assert set(ends) == set(owner)
    every = [(starts[rid], ends[rid]) for rid in ends]
    assert peak(every) <= MAX_RUNNING
    assert peak(every) >= PER_USER  # they did run side by side
    for user in "abcd":
        assert peak([(starts[r], ends[r]) for r in ends if owner[r] == user]) <= PER_USER
    assert {r.pid for r in runs} <= {w.p.pid for w in workers if w.p}  # only the workers ran them


def test_queue_cap_is_exact_across_two_api_processes(
    tmp_path: Path, pg_server: str, _pg_databases: object
) -> None:
    name = _pg_databases.new_name()  # type: ignore[attr-defined]
    asyncio.run(admin(pg_server, f'CREATE DATABASE "{name}"'))
    url = with_database(pg_server, name)
    cfg = formation(tmp_path, url, {"max_queued_per_user": QUEUE_CAP})
    assert errand_migrate(cfg).returncode == 0
    with fleet(tmp_path, cfg) as f:
        bases = [base for base, _ in f.apis(2)]
        got = asyncio.run(submit(bases, 60, conns=24, body=lambda _: message(0.1)))
    assert got.transport_errors == 0
    assert got.codes == {202: QUEUE_CAP, 429: 60 - QUEUE_CAP}  # one user, submits racing in two processes
    assert sorted(statuses(url).values()) == ["pending"] * QUEUE_CAP
