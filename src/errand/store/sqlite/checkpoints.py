"""WAL checkpoints on their own thread, so the writer thread never runs one.

By default SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages: the
writer thread then copies the pages into the database file and fsyncs it while every queued
write waits. A long purge dirties many pages, so its commits were the ones that paid, and
submits queued behind them saw the tail (bench/README.md, "Cost with the backlog"). Here the
writer's connection has `wal_autocheckpoint = 0` and this thread, on its own connection, runs
PASSIVE checkpoints (they never take the write lock, so the writer keeps committing) at most
every CHECKPOINT_GAP seconds while commits keep coming.

The WAL starts over from its beginning only when a write begins with all of it copied, which
under steady writes never happens on its own (the writer appends while the thread copies: a
first version of this let the WAL of a 200,000-row purge grow to 640 MB). So once the WAL holds
CATCH_UP_FRAMES, the thread asks the writer for one PASSIVE checkpoint after its next commit: it
only copies what came since the thread's copy (short), and the next write restarts the WAL, which
so stays about as large as SQLite's own default (1,000 pages) keeps it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECKPOINT_GAP = 0.25
"""Seconds between two checkpoints at most often (each costs an fsync of the database file)."""
CATCH_UP_FRAMES = 1000
"""WAL frames after which the writer checkpoints once itself, so the WAL can start over."""


def connect(path: str) -> sqlite3.Connection:
    """The checkpoint thread's own connection (it reads and copies pages; it never writes rows)."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


class Checkpointer:
    """`nudge()` after a commit; the thread checkpoints soon after, off the writer."""

    def __init__(self, connect_fn: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect_fn
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._catch_up = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="errand-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """A commit added to the WAL (called on the writer thread: only sets a flag)."""
        self._wanted.set()

    def catch_up_wanted(self) -> bool:
        """True once after the WAL reached CATCH_UP_FRAMES (the writer then checkpoints)."""
        if not self._catch_up.is_set():
            return False
        self._catch_up.clear()
        return True

    def stop(self) -> None:
        """End the thread (blocking: call it off the event loop) and close its connection."""
        self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while self._wanted.wait() and not self._stopping.is_set():
                self._wanted.clear()
                try:
                    conn = conn or self._connect()
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= CATCH_UP_FRAMES:
                        self._catch_up.set()
                except sqlite3.Error:  # the next nudge tries again; the WAL just grows meanwhile
                    log.warning("sqlite store: WAL checkpoint failed", exc_info=True)
                self._stopping.wait(CHECKPOINT_GAP)
        finally:
            if conn is not None:
                conn.close()
