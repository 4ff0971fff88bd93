"""SQLite purge: each statement of a purge chunk uses an index (bench/backlog_bench.py found the
scans that made a purge of 1,000,000 rows quadratic and held submits behind it), and a chunk is
a background write that submits never wait behind for more than one chunk."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from errand.clock import ManualClock, new_request_id
from errand.models import NewRequest, Status
from errand.store.sqlite import SqliteStore, upkeep
from errand.store.sqlite.connections import Writer, connect
from errand.store.sqlite.fileguard import FileGuard


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


async def test_the_rows_to_tombstone_are_found_by_requests_outlived(store: SqliteStore) -> None:
    """Not by requests_by_status, which the planner prefers: tombstones keep their status, so
    that index makes each chunk walk past every tombstone kept so far."""
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {upkeep.PURGE_OUTLIVED}", (1.0, 10))
        plan = " / ".join(row[3] for row in rows)
    finally:
        conn.close()
    assert "requests_outlived" in plan, plan


async def test_each_delete_of_a_purge_chunk_is_index_driven(store: SqliteStore) -> None:
    """The rows of a tombstoned request (events, deliveries, attempts, its own row) and the
    cascades of dropping it are found by request id through an index, never by a scan."""
    marks = "?, ?"
    statements = [
        f"DELETE FROM events WHERE request_id IN ({marks})",
        f"DELETE FROM deliveries WHERE request_id IN ({marks})",
        f"DELETE FROM attempts WHERE request_id IN ({marks})",
        f"DELETE FROM idempotency WHERE request_id IN ({marks})",
        f"DELETE FROM delivery_attempts WHERE delivery_id IN ({marks})",
        f"UPDATE requests SET expired_at = 1 WHERE id IN ({marks})",
    ]
    conn = sqlite3.connect(store.path)
    try:
        for statement in statements:
            plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", ("a", "b")))
            assert "SCAN" not in plan and ("USING" in plan or "PRIMARY KEY" in plan), (statement, plan)
    finally:
        conn.close()


async def test_background_writes_run_alone_after_the_queued_ones(tmp_path: Path) -> None:
    """A background op (a purge chunk) never joins a batch: the writes queued beside it are
    committed first, together, and each background op then has a transaction of its own."""
    path = str(tmp_path / "b.db")
    writer = Writer(
        lambda: connect(path, synchronous="normal", writer=True, busy_timeout=5),
        guard=FileGuard(path),
        busy_timeout=5,
        synchronous="normal",
    )
    await writer.start()
    ran: list[tuple[str, int]] = []

    def op(name: str) -> Callable[[sqlite3.Connection], None]:
        return lambda conn: ran.append((name, writer.commits))

    try:
        gate = threading.Event()
        blocker = writer.submit(lambda c: gate.wait(5), background=True)  # holds the writer thread
        await asyncio.sleep(0.05)
        queued = [
            writer.submit(op("chunk 1"), background=True),
            writer.submit(op("submit 1")),
            writer.submit(op("chunk 2"), background=True),
            writer.submit(op("submit 2")),
        ]
        gate.set()
        await blocker
        await asyncio.gather(*queued)
    finally:
        await writer.stop()
    first = ran[0][1]
    assert ran == [("submit 1", first), ("submit 2", first), ("chunk 1", first + 1), ("chunk 2", first + 2)]


async def test_a_submit_during_a_purge_waits_for_one_chunk_at_most(
    store: SqliteStore, clock: ManualClock
) -> None:
    """A submit issued while a long purge runs is committed before the purge's next chunk: at
    most the chunk running when it came, then its own transaction."""
    ids = [r.id for r, _ in await asyncio.gather(*(store.submit(new()) for _ in range(ROWS)))]
    conn = sqlite3.connect(store.path)
    try:  # all finished long ago (the purge's input; how they finished is beside the point)
        conn.execute("UPDATE requests SET status = 'completed', completed_at = ?", (clock.now(),))
        conn.commit()
    finally:
        conn.close()
    clock.advance(100)
    writer = store._writer  # its commit count is what is asserted
    start = writer.commits
    purge = asyncio.create_task(store.purge_expired(result_ttl=99, tombstone_ttl=1000))
    while writer.commits == start:  # noqa: ASYNC110 - the first chunk committed: the purge is on
        await asyncio.sleep(0.001)
    before = writer.commits
    submitted, _ = await store.submit(new())
    after = writer.commits
    assert not purge.done()  # it came mid-purge
    assert after - before <= 2, (before, after)  # the chunk then running, then the submit's own
    assert await purge == ROWS
    assert (await store.get(submitted.id)).status is Status.PENDING
    assert len(ids) == ROWS


ROWS = 3000
"""Enough for several chunks even once they have grown (store.purge_rules.PURGE_CHUNK_MAX)."""


def new() -> NewRequest:
    return NewRequest(id=new_request_id(), owner="o", user_id="u", message="m", agent="echo")
