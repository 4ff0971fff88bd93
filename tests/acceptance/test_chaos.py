"""Chaos on SQLite with real processes: what a crash or a second process must not break.

  * `errand serve` SIGKILLed in the middle of a 2,000-submit burst, then restarted: every id
    answered 202 ends terminal, with exactly one terminal event, and nothing else is left
    behind (a submit cut off by the kill either committed, and then completes, or left nothing);
  * two `errand serve` processes, each with its workers, on one SQLite file under load: every
    request completes exactly once, each attempt ran in one process only, and both did work.

The rest of the chaos suite lives beside this file, where it was written first:
SIGKILL during webhook retries is test_webhook_restart.py; PostgreSQL backends terminated under
load (pg_terminate_backend), the PostgreSQL server restarted, and a worker SIGKILLed on
PostgreSQL are test_scaleout_postgres.py; SIGKILL mid-run on SQLite is test_crash_sqlite.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_crash_sqlite import terminal_events
from tests.acceptance.test_scaleout_postgres import AGENTS, HEADERS, KEY, message, read_runs, submit
from tests.support.procs import Proc, serving, write_formation

pytestmark = pytest.mark.slow

N_BURST = 2000
KILL_AFTER = 700
"""Acceptances before the SIGKILL: well into the burst, with work queued and running."""


def formation(folder: Path) -> Path:
    """Short leases (a killed process's claims are taken over quickly after the restart) and
    attempts to spare (a kill costs one)."""
    return write_formation(
        folder,
        {
            "name": "chaos",
            "keys": {"client": [KEY], "admin": ["chaos-admin-key"]},
            "storage": {"url": "sqlite:///chaos.db"},
            "async": {"mode": "async"},
            "workers": {"concurrency": 32, "lease_seconds": 1.5, "poll_interval": 0.2},
            "workflow": {"task_timeout": 30, "retry": {"max_attempts": 10, "initial_delay": 0.05}},
            "agents": [{"id": "work", "handler": "slow_agents:work"}],
        },
        AGENTS,
    )


def statuses(db: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return dict(con.execute("SELECT id, status FROM requests").fetchall())
    finally:
        con.close()


def wait_terminal(db: Path, timeout: float) -> dict[str, str]:
    """Poll the database until no request is left unfinished (bounded); the final statuses."""
    deadline = time.monotonic() + timeout
    while True:
        now = statuses(db)
        if all(s in ("completed", "failed", "cancelled") for s in now.values()):
            return now
        if time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def assert_each_completed_once(db: Path, accepted: list[str]) -> dict[str, str]:
    final = wait_terminal(db, timeout=20)
    missing = [i for i in accepted if i not in final]
    assert not missing, f"{len(missing)} accepted ids are not in the database: {missing[:5]}"
    unfinished = Counter(s for s in final.values() if s != "completed")
    assert not unfinished, f"requests not completed: {dict(unfinished)}"
    ends = terminal_events(db)
    assert set(ends) == set(final)
    twice = {rid: types for rid, types in ends.items() if types != ["completed"]}
    assert not twice, f"requests with other than one `completed` event: {list(twice.items())[:5]}"
    return final


@dataclass
class Burst:
    accepted: list[str] = field(default_factory=list)
    cut_off: int = 0
    """Submits whose answer never came (the server died under them): their fate is unknown."""
    codes: Counter[int] = field(default_factory=Counter)
    signal_at: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when `signal_at` submits have been accepted."""


async def burst(base: str, todo: list[int], out: Burst, *, conns: int) -> None:
    """POST the submits of `todo` over `conns` connections until done or the server is gone:
    a connection that loses its server stops (the kill is the point)."""
    pending = iter(todo)

    async def one_connection() -> None:
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=10) as client:
            for _ in pending:
                try:
                    r = await client.post("/v1/chat", json={"message": message(0.1), "mode": "async"})
                except httpx.TransportError:
                    out.cut_off += 1
                    return
                out.codes[r.status_code] += 1
                if r.status_code == 202:
                    out.accepted.append(r.json()["request_id"])
                    if len(out.accepted) == out.signal_at:
                        out.reached.set()

    await asyncio.gather(*(one_connection() for _ in range(conns)))


def test_sigkill_during_a_submit_burst_loses_no_accepted_id(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    first = Burst(signal_at=KILL_AFTER)
    with serving(cfg, tmp_path / "serve1.log") as (base, proc):

        async def until_killed(victim: Proc) -> None:
            load = asyncio.create_task(burst(base, list(range(N_BURST)), first, conns=16))
            await asyncio.wait_for(first.reached.wait(), 20)
            victim.kill()
            await load

        asyncio.run(until_killed(proc))
    assert len(first.accepted) >= KILL_AFTER, first
    assert first.cut_off > 0, "the kill came after the burst: nothing was cut off"
    assert set(first.codes) == {202}, first.codes
    unfinished = sum(s not in ("completed", "failed") for s in statuses(tmp_path / "chaos.db").values())
    assert unfinished > 0, "nothing was queued or running at the kill"

    rest = Burst()
    with serving(cfg, tmp_path / "serve2.log") as (base, _):
        asyncio.run(burst(base, list(range(N_BURST - len(first.accepted) - first.cut_off)), rest, conns=16))
        assert rest.cut_off == 0 and set(rest.codes) == {202}, rest
        final = assert_each_completed_once(tmp_path / "chaos.db", first.accepted + rest.accepted)
    # a submit cut off by the kill left either nothing or one request, completed like the others
    strays = set(final) - set(first.accepted) - set(rest.accepted)
    assert len(strays) <= first.cut_off
    print(
        f"\nburst: {len(first.accepted)} accepted before the kill, {first.cut_off} cut off "
        f"({len(strays)} of them committed), {unfinished} unfinished at the kill, "
        f"{len(rest.accepted)} accepted after the restart; all {len(final)} completed once"
    )


def test_two_servers_on_one_sqlite_file_complete_each_request_once(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    with (
        serving(cfg, tmp_path / "serve1.log") as (one, p1),
        serving(cfg, tmp_path / "serve2.log") as (two, p2),
    ):
        sub = asyncio.run(submit([one, two], 1000, conns=16, body=lambda i: message(0.02)))
        assert set(sub.codes) == {202} and sub.transport_errors == 0, sub.codes
        assert sub.by_base[one] > 0 and sub.by_base[two] > 0
        assert_each_completed_once(tmp_path / "chaos.db", sub.ids)
        assert p1.p is not None and p1.p.poll() is None and p2.p is not None and p2.p.poll() is None
    runs = read_runs(tmp_path)
    starts = Counter((r.rid, r.attempt) for r in runs if r.kind == "start")
    assert set(rid for rid, _ in starts) == set(sub.ids)
    assert max(starts.values()) == 1, "an attempt was started twice"
    by_pid = Counter(r.pid for r in runs if r.kind == "end")
    assert len(by_pid) == 2, f"one process did all the work: {by_pid}"
    print(f"\ntwo servers on one SQLite file: 1000 completed once; attempts ended per process {dict(by_pid)}")
