"""Wake-ups for the PostgreSQL backend: in-process waiters fed by one LISTEN connection.

Every write notifies (`pg_notify`, delivered at COMMIT) and every store keeps one dedicated
connection, outside the pool, that LISTENs and hands notifications to asyncio waiters, so a
worker, long-poll or cancel watcher in any process wakes within milliseconds of a commit
anywhere. The store also fires the hub itself after its own commits, so its own writes wake its
own waiters even while the listener is down.

The change channel (one notification per request write, for long-polls and event streams) is
LISTENed only once this process waits for a change: a worker process never does, and every
process LISTENing on it costs PostgreSQL one delivery and the process one parse per write, work
that grew with the number of worker processes (scale-out). When that first LISTEN has taken
effect, change waiters re-read the database once, so a write committed just before is not
missed.

When the LISTEN connection drops, the listener reconnects with backoff (`RECONNECT`); meanwhile
`Hub.connected` is False and waiters fall back to polling at the store's `poll_interval`. Any
(re)connect or loss wakes every waiter once, because notifications sent while nobody listened are
gone: waiters re-read the database instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from errand.backoff import Backoff
from errand.models import Request, Status
from errand.store.postgres.pool import DRIVER_ERRORS, stop_task
from errand.store.postgres.sql import CH_CANCEL, CH_CHANGE, CH_OUTBOX, CH_WORK

EAGER_CHANNELS = frozenset({CH_WORK, CH_CANCEL, CH_OUTBOX})
"""LISTENed from the start; CH_CHANGE is added on the first change waiter."""

log = logging.getLogger(__name__)

RECONNECT = Backoff(initial=0.05, maximum=5.0)
"""Waits between attempts to get the LISTEN connection back (reset once it was up again)."""
KEEPALIVE = 5.0
"""Seconds between pings of an idle LISTEN connection: finds a silently dead socket."""


class Flag:
    """A sticky wake-up: set by a notification, consumed by the next wait that sees it.

    Sticky, so a notification arriving between a worker's empty claim and its next wait is not
    lost; every task waiting at the moment of `set()` wakes (asyncio.Event wakes all waiters)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when set (now or within `timeout`), False on timeout; clears the flag."""
        if not self._event.is_set():
            try:
                async with asyncio.timeout(max(timeout, 0.0)):
                    await self._event.wait()
            except TimeoutError:
                return False
        self._event.clear()
        return True


class ChangeWaiter:
    """One wait_for_change call: woken by a change of its request past `after_seq`, or poked
    (seq unknown: re-read the database)."""

    def __init__(self, after_seq: int) -> None:
        self.after_seq = after_seq
        self.seen_seq = after_seq
        self._event = asyncio.Event()

    def offer(self, seq: int) -> None:
        if seq > self.seen_seq:
            self.seen_seq = seq
            self._event.set()

    def poke(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._event.wait()
        except TimeoutError:
            pass
        self._event.clear()


class Hub:
    """In-process dispatch of wake-ups to waiters of one store."""

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self.work = Flag()
        self.cancel = Flag()
        self.outbox = Flag()
        self.connected = False
        """True while the LISTEN connection is up: cross-process wake-ups are live."""
        self._changes: dict[str, set[ChangeWaiter]] = {}
        self.on_watch: Callable[[], None] = lambda: None
        """Called by every watch(): the listener starts LISTENing on the change channel."""

    def watch(self, request_id: str, after_seq: int) -> ChangeWaiter:
        waiter = ChangeWaiter(after_seq)
        self._changes.setdefault(request_id, set()).add(waiter)
        self.on_watch()
        return waiter

    def unwatch(self, request_id: str, waiter: ChangeWaiter) -> None:
        waiters = self._changes.get(request_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._changes[request_id]

    def changed(self, request_id: str, seq: int) -> None:
        for waiter in self._changes.get(request_id, ()):
            waiter.offer(seq)

    def committed(self, requests: list[Request], *, work: bool = False) -> None:
        """After a commit by this store: wake its own waiters at once (the NOTIFY sent in the
        transaction wakes the other processes, and this one again, harmlessly)."""
        for req in requests:
            self.changed(req.id, req.seq)
            if (req.is_terminal or req.status is Status.INPUT_REQUIRED) and req.webhook_url:
                self.outbox.set()
        if work:
            self.work.set()

    def submitted(self, req: Request, cancelled: list[Request]) -> None:
        """After a submit committed: workers woken, and cancel watchers for what it interrupted."""
        if cancelled:
            self.cancelled(cancelled)
        self.work.set()
        self.changed(req.id, req.seq)

    def cancelled(self, requests: list[Request]) -> None:
        """After a cancel committed: cancel watchers woken, and the requests' waiters."""
        self.cancel.set()
        self.committed(requests)

    def wake_all(self) -> None:
        """Notifications may have been missed: every waiter re-checks the database."""
        self.work.set()
        self.cancel.set()
        self.outbox.set()
        self.poke_changes()

    def poke_changes(self) -> None:
        """Every change waiter re-reads its request's seq."""
        for waiters in self._changes.values():
            for waiter in waiters:
                waiter.poke()

    def step(self, timeout: float) -> float:
        """Without the LISTEN connection, waits end every poll_interval so callers re-check."""
        return timeout if self.connected else min(timeout, self.poll_interval)

    async def wait_for_change(
        self, request_id: str, after_seq: int, timeout: float, read_seq: Callable[[], Awaitable[int]]
    ) -> bool:
        """True once seq > after_seq, False at timeout (Store.wait_for_change).

        The waiter is registered BEFORE the row is read (`read_seq`), so a change committed after
        the read wakes it (its NOTIFY carries the new seq: no re-read needed). While the LISTEN
        connection is down, the row is re-read every poll_interval instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self.watch(request_id, after_seq)
        try:
            while True:
                if waiter.seen_seq > after_seq or await read_seq() > after_seq:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                await waiter.wait(self.step(remaining))
        finally:
            self.unwatch(request_id, waiter)

    def dispatch(self, channel: str, payload: str) -> None:
        """One notification from PostgreSQL (see `sql` for the channels and their payloads)."""
        if channel == CH_CHANGE:
            request_id, _, seq = payload.rpartition(" ")
            if seq.isdigit():
                self.changed(request_id, int(seq))
        elif channel == CH_WORK:
            self.work.set()
        elif channel == CH_CANCEL:
            self.cancel.set()
        elif channel == CH_OUTBOX:
            self.outbox.set()


Connect = Callable[[], Any]
"""An awaitable factory of a new asyncpg connection (no stubs: kept as Any here)."""


class Listener:
    """The dedicated LISTEN connection of one store, reconnecting with backoff until closed."""

    def __init__(self, connect: Connect, hub: Hub, *, keepalive: float = KEEPALIVE) -> None:
        self._connect = connect
        self._hub = hub
        self._keepalive = keepalive
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._conn: Any = None
        self._wanted = set(EAGER_CHANNELS)
        self._stir = asyncio.Event()
        """Set when the connection needs the session task: lost, or a channel newly wanted."""
        hub.on_watch = self._want_changes
        self.channels: frozenset[str] = frozenset()
        """The channels LISTENed on the live connection (empty while it is down)."""
        self.connects = 0
        """Successful connections so far (tests watch it to see a reconnect)."""

    def _want_changes(self) -> None:
        if CH_CHANGE not in self._wanted:
            self._wanted.add(CH_CHANGE)
            self._stir.set()  # the session task LISTENs (it alone talks on the connection)

    async def start(self, wait: float) -> None:
        """Start listening; wait up to `wait` s for the first connection attempt to end, so a
        store returned by open() already receives other processes' notifications."""
        self._task = asyncio.create_task(self._run(), name="errand-pg-listener")
        try:
            async with asyncio.timeout(wait):
                await self._first_attempt.wait()
        except TimeoutError:
            log.warning("postgres store: LISTEN connection not up yet; polling until it is")

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        self._hub.connected = False

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the LISTEN connection (tests terminate it)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else int(conn.get_server_pid())

    async def _run(self) -> None:
        failures = 0
        while True:
            connects = self.connects
            error = await self._session_error()
            failures = 1 if self.connects > connects else failures + 1  # it was up: a fresh backoff
            delay = RECONNECT.delay(failures)
            if isinstance(error, DRIVER_ERRORS):
                log.warning("postgres store: LISTEN connection lost (%s); retrying in %.2fs", error, delay)
            elif error is not None:
                log.error(
                    "postgres store: LISTEN connection failed; retrying in %.2fs", delay, exc_info=error
                )
            self._first_attempt.set()
            await asyncio.sleep(delay)

    async def _session_error(self) -> Exception | None:
        """One session; the exception that ended it, None when it ended on its own."""
        try:
            await self._session()
        except Exception as exc:  # the listener must outlive any surprise; waiters poll meanwhile
            return exc
        return None

    async def _session(self) -> None:
        """Connect, LISTEN, and serve notifications until the connection is lost."""
        lost = asyncio.Event()
        conn = await self._connect()
        self._conn = conn
        try:

            def on_lost(_conn: Any) -> None:
                lost.set()
                self._stir.set()

            conn.add_termination_listener(on_lost)
            listening = set(self._wanted)
            for channel in sorted(listening):
                await conn.add_listener(channel, self._on_notify)
            self.channels = frozenset(listening)
            reconnect = self.connects > 0
            self.connects += 1
            self._hub.connected = True
            self._first_attempt.set()
            if reconnect:
                self._hub.wake_all()
            else:  # a waiter may have read the database before this first LISTEN took effect
                self._hub.poke_changes()
            await self._watch(conn, lost, listening)
        finally:
            self._hub.connected = False
            self._conn = None
            self.channels = frozenset()
            conn.terminate()
            self._hub.wake_all()  # waiters switch to polling now, not at their timeout

    async def _watch(self, conn: Any, lost: asyncio.Event, listening: set[str]) -> None:
        """Return when the connection is gone: closed by the server, or not answering a ping.
        Meanwhile LISTEN on channels wanted since the session began; once such a LISTEN has
        taken effect, change waiters re-read (a write committed before it sent no notification
        here)."""
        while not lost.is_set():
            self._stir.clear()
            for channel in sorted(self._wanted - listening):
                async with asyncio.timeout(self._keepalive):
                    await conn.add_listener(channel, self._on_notify)
                listening.add(channel)
                self.channels = frozenset(listening)
                self._hub.poke_changes()
            try:
                async with asyncio.timeout(self._keepalive):
                    await self._stir.wait()
                continue
            except TimeoutError:
                pass
            async with asyncio.timeout(self._keepalive):
                await conn.fetchval("SELECT 1")

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self._hub.dispatch(channel, payload)
