"""SQLite connections and threads: one group-committing writer, a small reader pool, error mapping.

SQLite allows one writer at a time, and each commit costs an fsync. So every write goes through
one thread owning one connection: it takes the first queued operation, drains the others already
waiting, and runs them all in ONE `BEGIN IMMEDIATE ... COMMIT` (each in a SAVEPOINT, so an
operation that raises undoes only itself). Futures are resolved only after COMMIT returned: a
caller never learns of a write that is not durable. Reads run on other connections beside the
writer (WAL). Every sqlite3 exception is turned into an `errors` type here.

Relaxed writes: with `synchronous=full`, a batch made only of writes that may be lost on power
loss without breaking a promise (claims, lease renewals, progress events: losing one just puts
the request back to where it was) is committed with `synchronous=NORMAL`, i.e. without an
fsync. WAL frames are appended in order and the next fsynced commit covers the whole file, so a
durable write never survives while an earlier relaxed one is lost. This takes an fsync out of
every pickup and halves them in a drain.

Background writes (a purge chunk): each runs alone in a transaction of its own, and only when
no other write is queued; writes queued meanwhile go first. A submit arriving during one waits
for that one op, never for a batch made longer by it.

Bounded lock waits: each write waits at most `busy_timeout` seconds for the database lock,
counted from when it was queued (a batch queued behind a batch that is itself waiting does not
wait twice, and a short-deadline op is not held by a long one). Ops that spent their wait fail
with StoreUnavailable; the others try again for what they have left. After each commit the
`FileGuard` checks that the path still names the file committed to, before anyone is told.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from errand.errors import Conflict, ErrandError, StoreUnavailable
from errand.store.sqlite.fileguard import FileGuard

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], T]
ReadFn = Callable[[sqlite3.Connection], T]

MAX_BATCH = 1000
LOCK_SLICE = 0.1
"""Seconds of one wait for a lock another process holds, between checks of the ops' deadlines."""
SYNCHRONOUS = {"normal": 1, "full": 2}
"""Accepted `synchronous` settings and the value PRAGMA synchronous reads back for each."""


def translate(exc: sqlite3.Error) -> ErrandError:
    """The one mapping of driver errors: constraint violations are conflicts, the rest means the
    database cannot serve us right now (locked, full, unreadable)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"conflicting write: {exc}")
    return StoreUnavailable(f"sqlite: {exc}")


def _locked(exc: BaseException) -> bool:
    """SQLITE_BUSY: another connection (another process) holds the write lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def connect(path: str, *, synchronous: str, writer: bool, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with errand's pragmas, each
    read back so a setting SQLite ignored is an error rather than a silent weakening."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        if conn.execute("PRAGMA synchronous").fetchone()[0] != SYNCHRONOUS[synchronous]:
            raise StoreUnavailable(f"sqlite: synchronous={synchronous} was not applied")
        if writer:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailable(f"sqlite: cannot enable WAL mode (got {mode!r})")
        else:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(slots=True)
class _Op:
    fn: WriteFn[Any]
    future: asyncio.Future[Any]
    on_commit: Callable[[Any], None] | None
    deadline: float
    """time.monotonic() after which the op no longer waits for the database lock."""
    relaxed: bool = False
    background: bool = False
    outcome: Any = None
    error: BaseException | None = None


class Writer:
    """The writer thread. `submit(fn)` returns a future resolved after fn's batch committed."""

    def __init__(
        self,
        connect_fn: Callable[[], sqlite3.Connection],
        *,
        guard: FileGuard,
        busy_timeout: float,
        max_batch: int = MAX_BATCH,
        synchronous: str = "full",
    ) -> None:
        self._connect = connect_fn
        self._guard = guard
        self._busy_timeout = busy_timeout
        self._busy_ms = -1
        """The busy_timeout the connection has now (ms), set per batch from its ops' deadlines."""
        self._max_batch = max_batch
        self._full = synchronous == "full"
        self._relaxed_now = False
        """True while the connection runs with synchronous=NORMAL for a relaxed batch."""
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._background: collections.deque[_Op] = collections.deque()
        """Background ops taken off the queue, waiting for a moment no other write is queued."""
        self._stop_seen = False
        self._closed = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self.commits = 0
        """Transactions committed so far (group commit makes this far less than writes)."""

    async def start(self) -> None:
        """Start the thread and wait until its connection is open (errors surface here)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        ready: asyncio.Future[None] = loop.create_future()
        self._done = loop.create_future()
        thread = threading.Thread(target=self._run, args=(ready,), name="errand-sqlite-writer", daemon=True)
        self._closed = False
        thread.start()
        try:
            await ready
        except BaseException:
            self._closed = True
            raise

    def submit(
        self,
        fn: WriteFn[T],
        on_commit: Callable[[T], None] | None = None,
        *,
        relaxed: bool = False,
        lock_wait: float | None = None,
        background: bool = False,
    ) -> asyncio.Future[T]:
        """Queue a write; `on_commit(result)` runs on the event loop once it is committed
        (durable, unless `relaxed`; alone and after the other writes if `background`: see the
        module docstring). It waits at most `lock_wait` (default: busy_timeout) seconds from
        now for the database lock."""
        if self._closed or self._loop is None:
            raise StoreUnavailable("the store is closed")
        self._guard.refuse_if_broken()
        wait = self._busy_timeout if lock_wait is None else min(lock_wait, self._busy_timeout)
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Op(fn, future, on_commit, time.monotonic() + wait, relaxed, background))
        return future

    async def stop(self) -> None:
        """Run what is queued, then end the thread and close its connection."""
        if self._closed or self._done is None:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.shield(self._done)

    # -- the thread -------------------------------------------------------------------------------
    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
            self._guard.check()  # the file just opened: what the path must keep naming
        except sqlite3.Error as exc:
            self._call(_settle, ready, None, translate(exc))
            return
        except BaseException as exc:
            self._call(_settle, ready, None, exc)
            return
        self._call(_settle, ready, None, None)
        try:
            while (batch := self._next_batch()) is not None:
                self._commit(conn, batch)
        finally:
            self._closed = True
            conn.close()
            self._fail_leftovers()
            if self._done is not None:
                self._call(_settle, self._done, None, None)

    def _fail_leftovers(self) -> None:
        """Should the thread end abnormally, no caller is left waiting forever."""
        leftovers: list[_Op] = list(self._background)
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is not None:
                leftovers.append(op)
        for left in leftovers:
            left.error = StoreUnavailable("the store is closed")
        if leftovers:
            self._call(_deliver, leftovers)

    def _call(self, fn: Callable[..., object], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            self._loop.call_soon_threadsafe(fn, *args)

    def _next_batch(self) -> list[_Op] | None:
        """What is queued (blocking for it unless a background op waits), or else one
        background op alone; None once stopped with nothing left."""
        batch: list[_Op] = []
        if not self._stop_seen and not self._background:
            self._take(self._queue.get(), batch)
        self._take_queued(batch)
        if batch:
            return batch
        return [self._background.popleft()] if self._background else None

    def _take_queued(self, batch: list[_Op]) -> None:
        """Add what is already queued to `batch`, up to max_batch, without blocking."""
        while len(batch) < self._max_batch and not self._stop_seen:
            try:
                self._take(self._queue.get_nowait(), batch)
            except queue.Empty:
                break

    def _take(self, op: _Op | None, batch: list[_Op]) -> None:
        if op is None:
            self._stop_seen = True
        elif op.background:
            self._background.append(op)
        else:
            batch.append(op)

    def _set_relaxed(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        """synchronous=NORMAL for an all-relaxed batch, FULL again as soon as one write is not."""
        relaxed = self._full and all(op.relaxed for op in batch)
        if relaxed != self._relaxed_now:
            conn.execute(f"PRAGMA synchronous = {'NORMAL' if relaxed else 'FULL'}")
            self._relaxed_now = relaxed

    def _commit(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        try:
            self._guard.refuse_if_broken()
            self._begin(conn, batch)
            for op in batch:
                _run_op(conn, op)
            conn.execute("COMMIT")
            self._guard.check()  # committed to the file the path names, or nobody is told "done"
        except Exception as exc:
            _rollback(conn)
            for op in batch:  # the whole batch is undone: every caller learns it, none is told "done"
                op.error = translate(exc) if isinstance(exc, sqlite3.Error) else exc
        else:
            self.commits += 1
        self._call(_deliver, batch)

    def _begin(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        """BEGIN IMMEDIATE, waiting for the lock in slices of LOCK_SLICE s. After each slice the
        ops whose wait is spent fail (delivered at once, taken out of `batch`), and ops queued
        meanwhile join the wait, so none waits longer than its own deadline. Raises when no
        op is left waiting."""
        while True:
            self._set_relaxed(conn, batch)
            wait = min(op.deadline for op in batch) - time.monotonic()
            self._set_busy_timeout(conn, min(wait, LOCK_SLICE))
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.Error as exc:
                if not _locked(exc):
                    raise
                now = time.monotonic()
                spent = [op for op in batch if op.deadline <= now]
                for op in spent:
                    op.error = translate(exc)
                self._call(_deliver, spent)
                batch[:] = [op for op in batch if op.deadline > now]
                self._take_queued(batch)
                if not batch:
                    raise

    def _set_busy_timeout(self, conn: sqlite3.Connection, seconds: float) -> None:
        ms = max(0, int(seconds * 1000))
        if ms != self._busy_ms:
            conn.execute(f"PRAGMA busy_timeout = {ms}")
            self._busy_ms = ms


def _run_op(conn: sqlite3.Connection, op: _Op) -> None:
    """Run one operation in its own savepoint. Errors of the operation stay with it; a failure
    to roll back the savepoint (the transaction is gone) propagates and fails the batch."""
    conn.execute("SAVEPOINT op")
    try:
        op.outcome = op.fn(conn)
    except Exception as exc:
        op.error = translate(exc) if isinstance(exc, sqlite3.Error) else exc
        conn.execute("ROLLBACK TO op")
    conn.execute("RELEASE op")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _deliver(batch: list[_Op]) -> None:
    """On the event loop, after COMMIT: resolve futures, then fire notifications. Notifications
    run even when the caller stopped waiting (the write happened all the same)."""
    for op in batch:
        _settle(op.future, op.outcome, op.error)
        if op.error is None and op.on_commit is not None:
            try:
                op.on_commit(op.outcome)
            except Exception:  # a wake-up must never keep the others from being delivered
                log.exception("sqlite store: post-commit notification failed")


class Readers:
    """A few threads, each with its own read-only connection, for reads beside the writer."""

    def __init__(self, connect_fn: Callable[[], sqlite3.Connection], size: int, guard: FileGuard) -> None:
        self._connect = connect_fn
        self._guard = guard
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="errand-sqlite-read")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, fn: ReadFn[T], *, snapshot: bool = False) -> T:
        """Run fn(conn) on a reader thread; `snapshot` wraps it in one read transaction."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        self._guard.refuse_if_broken()  # a replaced file's rows vanish at the next restart
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, snapshot)

    def _call(self, fn: ReadFn[T], snapshot: bool) -> T:
        try:
            conn = self._conn()
            if not snapshot:
                return fn(conn)
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                _rollback(conn)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
