"""Worker liveness on PostgreSQL: each registered worker's session lock, and the takeover of
the requests of workers whose lock is free.

A worker's liveness is its database session: the store holds one session-level advisory lock
per registered worker on a dedicated connection (outside the pool) for as long as it is open.
When the process dies, PostgreSQL ends that session and frees the lock at once; other workers,
looking every `workers.liveness_interval`, see the free lock in `pg_locks` and take the dead
worker's requests over (`requeue_dead`), seconds after the crash instead of a lease later.

The lock is taken before the worker's row is written (on the same session), so a row is never
seen without its lock while the worker lives. When this process's own lock connection drops, its
workers are as good as dead to the others: `check` then makes `claim` raise StoreUnavailable
until the connection is back and every worker registered again under a new key (attempts it
still runs are fenced: their leases may be taken over meanwhile). A network partition that
leaves the server's session hanging keeps the lock held: then the lease is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from errand.backoff import Backoff
from errand.clock import Clock
from errand.errors import StoreUnavailable
from errand.models import Request
from errand.store import processes, rules
from errand.store.postgres import ops, sql
from errand.store.postgres.pool import (
    CONNECT_TIMEOUT,
    DRIVER_ERRORS,
    Conn,
    Database,
    Row,
    stop_task,
    translate,
)
from errand.store.processes import WorkerProcess

log = logging.getLogger(__name__)

RECONNECT = Backoff(initial=0.05, maximum=5.0)
KEEPALIVE = 2.0
"""Seconds between pings of the lock connection: how soon a silently dead socket is noticed."""
_KEY_TRIES = 100
"""Lock keys tried in turn when one is taken (the key sequence cycles after 2**31 workers)."""


class SessionLocks:
    """The dedicated connection holding the advisory lock of every worker registered here."""

    def __init__(self, connect: Callable[[], Any], clock: Clock) -> None:
        self._connect = connect
        self._clock = clock
        self._workers: dict[str, WorkerProcess] = {}
        self._keys: dict[str, int] = {}
        self._known: set[str] = set()
        """Workers whose row was written once: others judge them by their lock from then on."""
        self._conn: Any = None
        self._up = asyncio.Event()
        self._lock = asyncio.Lock()
        """One query at a time on the connection: registering, or the keepalive ping."""
        self._task: asyncio.Task[None] | None = None
        self.connects = 0

    @property
    def backend_pid(self) -> int | None:
        """Server pid of the lock connection, None while it is down (tests terminate it)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else int(conn.get_server_pid())

    def check(self, worker_id: str) -> None:
        """StoreUnavailable when `worker_id` was registered here but its lock is not held now
        (the others may be taking its requests over). Before its first registration succeeded,
        nobody knows it, so its leases are only taken over by expiry: it may claim."""
        if worker_id in self._known and worker_id not in self._keys:
            raise StoreUnavailable(f"worker {worker_id!r} lost its session lock; reconnecting")

    async def register(self, worker_id: str, process: WorkerProcess) -> None:
        """Hold a lock for the worker and write its row; StoreUnavailable if the lock connection
        is not up within CONNECT_TIMEOUT (it keeps trying: the worker is registered when it is)."""
        self._workers[worker_id] = process
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="errand-pg-worker-lock")
        async with self._lock:
            if self._conn is not None:
                try:
                    await self._acquire(self._conn, worker_id, process)
                except DRIVER_ERRORS as exc:
                    raise translate(exc) from exc
                return
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                while worker_id not in self._keys:
                    await self._up.wait()
                    await asyncio.sleep(0)
        except TimeoutError:
            raise StoreUnavailable("postgres: the worker lock connection is not up") from None

    async def close(self) -> None:
        """Stop; the server frees every lock with the session."""
        task, self._task = self._task, None
        await stop_task(task)

    async def _acquire(self, conn: Any, worker_id: str, process: WorkerProcess) -> None:
        old = self._keys.pop(worker_id, None)
        for _ in range(_KEY_TRIES):
            key = int(await conn.fetchval(sql.NEXT_LOCK_KEY))
            if await conn.fetchval(sql.TRY_WORKER_LOCK, key):
                break
        else:
            raise StoreUnavailable(f"no free worker lock key after {_KEY_TRIES} tries")
        now = self._clock.now()
        await conn.execute(
            sql.REGISTER_WORKER, worker_id, process.host, process.node, process.pid, process.started, key, now
        )
        self._keys[worker_id] = key
        self._known.add(worker_id)
        if old is not None:
            await conn.fetchval(sql.UNLOCK_WORKER, old)

    async def _run(self) -> None:
        failures = 0
        while True:
            connects = self.connects
            try:
                await self._session()
            except Exception as exc:  # outlive any surprise: claims are refused meanwhile
                failures = 1 if self.connects > connects else failures + 1
                delay = RECONNECT.delay(failures)
                trace = None if isinstance(exc, DRIVER_ERRORS) else exc
                log.warning(
                    "postgres store: worker lock lost (%s); retrying in %.2fs", exc, delay, exc_info=trace
                )
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        lost = asyncio.Event()
        conn = await self._connect()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            async with self._lock:
                for worker_id, process in list(self._workers.items()):
                    await self._acquire(conn, worker_id, process)
                self._conn = conn
                self.connects += 1
                self._up.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KEEPALIVE):
                        await lost.wait()
                async with self._lock, asyncio.timeout(KEEPALIVE):
                    await conn.fetchval("SELECT 1")
            raise ConnectionError("the server closed the worker lock connection")
        finally:
            self._up.clear()
            self._keys.clear()
            self._conn = None
            conn.terminate()


def _process(row: Row) -> WorkerProcess:
    return WorkerProcess(host=row["host"], node=row["node"], pid=row["pid"], started=row["started"])


async def requeue_dead(db: Database, now: float) -> list[Request]:
    """Take over the requests of workers whose lock is free, or whose process on this node is
    gone: one read when nobody died."""
    rows = await db.fetch(sql.WORKERS, read=True)
    dead = [row for row in rows if not row["locked"] or processes.dead(_process(row))]
    if not dead:
        return []
    return await db.run(lambda c: _take_over(c, dead, now))


async def _take_over(conn: Conn, dead: list[Row], now: float) -> list[Request]:
    """Forget the dead workers (only if still registered under the key they were judged by)
    and lose their leases, in one transaction: concurrent checkers take each over once."""
    gone = await conn.fetch(sql.FORGET_WORKERS, [r["id"] for r in dead], [r["lock_key"] for r in dead])
    if not gone:
        return []
    leased = await conn.fetch(sql.LEASES_OF, [r["id"] for r in gone])
    return await ops.lose(conn, leased, now, rules.WORKER_DIED)
