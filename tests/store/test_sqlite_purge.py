"""SQLite purge: each search of a purge chunk uses an index (bench/backlog_bench.py found the
scans that made a purge of 1,000,000 rows quadratic and held submits behind it)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest

from errand.clock import ManualClock
from errand.store.sqlite import SqliteStore, upkeep


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(sqlite_url, clock=clock)
    yield opened
    await opened.close()


@pytest.mark.parametrize("statement", ["PURGE_OUTLIVED", "PURGE_TOMBSTONES", "PURGE_KEYS"])
async def test_each_search_of_a_purge_chunk_uses_an_index(store: SqliteStore, statement: str) -> None:
    """A long purge runs thousands of chunks, each holding the writer: a chunk that scanned the
    table (the tombstones had no index; the rows still to tombstone shared one with every
    tombstone) made a purge of 1,000,000 rows quadratic and held submits behind it."""
    conn = sqlite3.connect(store.path)
    try:
        plan = " / ".join(
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {getattr(upkeep, statement)}", (1.0, 10))
        )
    finally:
        conn.close()
    assert "SCAN requests" not in plan and "SCAN idempotency" not in plan, plan
    assert "USING" in plan, plan
