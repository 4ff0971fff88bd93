"""SQLite WAL checkpoints run on their own thread (store/sqlite/checkpoints.py), not inside the
writer's commits: the WAL must stay bounded all the same, and the writer must not checkpoint."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from errand.clock import ManualClock
from errand.store.sqlite import SqliteStore
from errand.store.sqlite.checkpoints import CHECKPOINT_GAP, Checkpointer
from tests.store.contract import new

WAVES, PER_WAVE, MESSAGE = 12, 100, "x" * 8000
"""About 1,000,000 bytes a wave: the whole run is 12 times what one wave adds to the WAL."""


def wal_bytes(path: str) -> int:
    return Path(f"{path}-wal").stat().st_size


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(sqlite_url, clock=clock, synchronous="normal")
    yield opened
    await opened.close()


async def test_the_wal_stays_bounded_while_writes_keep_coming(store: SqliteStore) -> None:
    """Waves of writes with pauses longer than CHECKPOINT_GAP: each pause lets the checkpoint
    thread copy the WAL back, and the writer starts the WAL over, so it never holds every wave."""
    for _ in range(WAVES):
        await asyncio.gather(*(store.submit(new(message=MESSAGE)) for _ in range(PER_WAVE)))
        await asyncio.sleep(CHECKPOINT_GAP * 3)
    written = WAVES * PER_WAVE * len(MESSAGE)
    assert wal_bytes(store.path) < written / 3, (wal_bytes(store.path), written)
    assert len((await store.list(owner="owner-a", user_id="u1", limit=5)).requests) == 5


async def test_the_wal_starts_over_under_writes_that_never_pause(store: SqliteStore) -> None:
    """The writer appends while the thread copies, so the WAL is never all copied when a write
    begins: without the writer's catch-up it held every write (640 MB in a 200,000-row purge)."""
    for _ in range(2 * WAVES):
        await asyncio.gather(*(store.submit(new(message=MESSAGE)) for _ in range(PER_WAVE)))
    written = 2 * WAVES * PER_WAVE * len(MESSAGE)
    assert wal_bytes(store.path) < written / 3, (wal_bytes(store.path), written)


async def test_the_writer_leaves_checkpoints_to_the_thread(store: SqliteStore) -> None:
    """The writer's connection has auto-checkpoints off; after writes a PASSIVE checkpoint from
    another connection finds everything already copied (the thread did it)."""
    await asyncio.gather(*(store.submit(new(message=MESSAGE)) for _ in range(PER_WAVE)))
    await asyncio.sleep(CHECKPOINT_GAP * 3)
    conn = sqlite3.connect(store.path)
    try:
        busy, log, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
    assert busy == 0 and log == copied, (busy, log, copied)
    assert await store._writer.submit(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0


def test_a_failing_checkpoint_is_logged_and_the_thread_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that cannot open is a warning, and the next nudge tries again."""
    tries: list[int] = []

    def connect() -> sqlite3.Connection:
        tries.append(1)
        return sqlite3.connect(tmp_path / "missing" / "x.db")

    thread = Checkpointer(connect)
    thread.start()
    thread.nudge()
    time.sleep(CHECKPOINT_GAP * 2)
    thread.nudge()
    time.sleep(CHECKPOINT_GAP * 2)
    thread.stop()
    assert len(tries) >= 2
    assert "WAL checkpoint failed" in caplog.text
