"""SQLite statements that name requests by id must look them up by id. The store never runs
ANALYZE, so the planner has no statistics, and beside an `id IN (...)` it took a `status IN`
term to `requests_by_status` instead: at 1,000,000 rows a fair claim walked every pending row
(0.4 s, drain at 10 % of its rate at 5,000: bench/backlog_bench.py drain-ab), and the watchdog's
cancel check walked every ended row."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest

from errand.clock import ManualClock
from errand.store.sqlite import SqliteStore, reads, scheduling


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(sqlite_url, clock=clock)
    yield opened
    await opened.close()


def plan_of(path: str, sql: str) -> str:
    conn = sqlite3.connect(path)
    try:
        return " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", [0] * sql.count("?")))
    finally:
        conn.close()


@pytest.mark.parametrize("n", [1, 64])
async def test_the_fair_claim_updates_the_chosen_rows_by_their_id(store: SqliteStore, n: int) -> None:
    plan = plan_of(store.path, scheduling.claim_chosen_sql(n))
    assert "sqlite_autoindex_requests_1 (id=?)" in plan, plan
    assert "requests_by_status" not in plan, plan


@pytest.mark.parametrize("n", [1, 500])
async def test_which_requests_have_ended_is_read_by_their_id(store: SqliteStore, n: int) -> None:
    plan = plan_of(store.path, reads.ended_among_sql(n))
    assert "sqlite_autoindex_requests_1 (id=?)" in plan, plan
    assert "requests_by_status" not in plan, plan
