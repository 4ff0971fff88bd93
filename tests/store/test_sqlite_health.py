"""SQLite store health: a write waits for a foreign lock no longer than busy_timeout from when
it was asked (also when queued behind a batch that is itself waiting), and a database file
deleted under the store is refused, by writes and then by reads, instead of written to."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from errand.clock import ManualClock
from errand.errors import StoreUnavailable
from errand.store.rules import PROBE_LOCK_WAIT
from errand.store.sqlite import SqliteStore
from tests.store.contract import new

BUSY = 0.5
SLACK = 0.75


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(sqlite_url, clock=clock, busy_timeout=BUSY)
    yield opened
    await opened.close()


async def timed_submit(store: SqliteStore, delay: float) -> tuple[BaseException | None, float]:
    await asyncio.sleep(delay)
    started = time.monotonic()
    try:
        await store.submit(new())
    except StoreUnavailable as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


async def test_each_write_waits_at_most_busy_timeout_for_a_foreign_lock(store: SqliteStore) -> None:
    foreign = sqlite3.connect(store.path, isolation_level=None)
    try:
        foreign.execute("BEGIN EXCLUSIVE")
        outcomes = await asyncio.gather(*(timed_submit(store, d) for d in (0, 0.1, 0.2, 0.3, 0.4, 0.45)))
        for error, seconds in outcomes:
            assert error is not None and "locked" in str(error)
            assert seconds < BUSY + SLACK, f"waited {seconds:.2f}s"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.probe_write()
        assert time.monotonic() - started < BUSY + SLACK
    finally:
        foreign.rollback()
        foreign.close()
    assert (await store.submit(new()))[1] is True


async def test_a_write_queued_while_the_lock_is_briefly_held_gets_through(store: SqliteStore) -> None:
    foreign = sqlite3.connect(store.path, isolation_level=None)
    try:
        foreign.execute("BEGIN EXCLUSIVE")
        pending = asyncio.ensure_future(store.submit(new()))
        await asyncio.sleep(BUSY / 3)
    finally:
        foreign.rollback()
        foreign.close()
    req, created = await pending
    assert created and (await store.get(req.id)).id == req.id


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
async def test_a_deleted_file_is_refused_by_writes_then_reads(store: SqliteStore, suffix: str) -> None:
    kept, _ = await store.submit(new())
    os.unlink(store.path + suffix)
    with pytest.raises(StoreUnavailable, match="was deleted while errand had it open"):
        await store.submit(new())
    with pytest.raises(StoreUnavailable, match="was deleted"):
        await store.get(kept.id)  # the file that holds it is gone at the next restart
    with pytest.raises(StoreUnavailable):
        await store.probe_write()


async def test_a_replaced_file_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    await store.submit(new())
    os.replace(store.path, tmp_path / "moved.db")
    sqlite3.connect(store.path).close()  # someone creates a new, empty file at the path
    with pytest.raises(StoreUnavailable, match="was replaced"):
        await store.submit(new())


async def test_a_short_wait_is_not_held_by_a_longer_one_in_front(sqlite_url: str, clock: ManualClock) -> None:
    """/ready's probe waits PROBE_LOCK_WAIT s, even while a submit waiting longer holds the writer."""
    store = await SqliteStore.open(sqlite_url, clock=clock, busy_timeout=PROBE_LOCK_WAIT + 1.5)
    foreign = sqlite3.connect(store.path, isolation_level=None)
    try:
        foreign.execute("BEGIN EXCLUSIVE")
        long_wait = asyncio.ensure_future(timed_submit(store, 0))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.probe_write()
        assert time.monotonic() - started < PROBE_LOCK_WAIT + SLACK
        error, seconds = await long_wait
        assert error is not None and PROBE_LOCK_WAIT + 1.4 < seconds < PROBE_LOCK_WAIT + 1.5 + SLACK
    finally:
        foreign.rollback()
        foreign.close()
        await store.close()
