"""PostgresStore: the Store protocol on PostgreSQL (asyncpg pool, SKIP LOCKED claims, LISTEN/NOTIFY).

Many processes share one database. Claims take rows with `FOR UPDATE SKIP LOCKED`, so claimers
never wait on nor double-claim each other; every write of a running attempt is fenced on
(id, attempt, lease held), so a worker that lost its lease writes nothing. Writes notify other
processes through `pg_notify` (delivered at COMMIT) and one LISTEN connection per store wakes
local waiters (`listen`): `cross_process_wakeups = True`.

Hot paths are one statement each (an implicit transaction, one round trip): claim,
append_event, retry_later, heartbeat; concurrent submits share one statement (group commit).
Terminal writes need the final row to build the status document for the event and the outbox,
so they run as a short explicit transaction (`ops`). SQL text lives in `sql`, the rules shared
with SQLite in `store.rules`; the pool in `pool`, group commit in `group_commit`, the session
locks that show a registered worker alive in `workers`.
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

from errand.clock import Clock, SystemClock
from errand.console_models import Match
from errand.errors import ConfigError, StoreUnavailable
from errand.models import (
    AttemptRecord,
    Claim,
    Delivery,
    ErrorInfo,
    Event,
    IdempotencyKey,
    Limits,
    NewRequest,
    OutboxItem,
    Page,
    Progress,
    QueueInfo,
    QueueStats,
    Request,
    Result,
    Status,
    sources_of,
)
from errand.store import attempt_log, listing, processes, rules
from errand.store.postgres import fair_sql, ops, outbox_ops, sql, turns, workers
from errand.store.postgres.console import PostgresConsole
from errand.store.postgres.group_commit import GroupCommit
from errand.store.postgres.listen import Hub, Listener
from errand.store.postgres.pool import CONNECT_TIMEOUT, Database, Row, connect
from errand.store.processes import WorkerProcess
from errand.store.queue import FOLD_AT, PG_FOLD, QUEUE_SQL, to_queue_stats


class PostgresStore(PostgresConsole):
    """Durable requests, events, leases and outbox in a PostgreSQL database shared by processes."""

    cross_process_wakeups = True

    def __init__(self, dsn: str, *, clock: Clock, poll_interval: float, result_ttl: float | None) -> None:
        self._result_ttl = result_ttl
        self._clock = clock
        self._poll = poll_interval
        self._db: Database | None = None
        self._hub = Hub()
        self._listener = Listener(lambda: connect(dsn, "errand-listen"), self._hub)
        self.worker_locks = workers.SessionLocks(lambda: connect(dsn, "errand-worker-lock"), clock)
        # Concurrent calls share one statement (group commit); the pool is looked up at flush time.
        self._submits: GroupCommit[ops.Submission, Row] = GroupCommit(
            lambda batch: ops.submit_many(self._database, batch)
        )
        self._appends: GroupCommit[ops.Append, int] = GroupCommit(
            lambda batch: ops.append_many(self._database, batch)
        )
        self._finishes: GroupCommit[ops.Finish, Request] = GroupCommit(
            lambda batch: ops.finish_many(self._database, batch)
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        poll_interval: float = 0.5,
        pool_size: int = 10,
        migrate: bool = True,
        result_ttl: float | None = None,
        **_ignored: Any,
    ) -> PostgresStore:
        """Connect the pool and the LISTEN connection, and migrate unless told not to. Options of
        other backends (e.g. `synchronous`) are accepted and ignored. StoreUnavailable if the
        database cannot be reached. `result_ttl`: as SqliteStore.open."""
        if poll_interval <= 0:
            raise ConfigError(f"poll_interval must be > 0, got {poll_interval!r}")
        store = cls(url, clock=clock or SystemClock(), poll_interval=poll_interval, result_ttl=result_ttl)
        try:
            store._db = await Database.open(url, pool_size=pool_size)
            await store._listener.start(wait=CONNECT_TIMEOUT)
            if migrate:
                await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    def _cutoff(self) -> float | None:
        return rules.result_cutoff(self._clock.now(), self._result_ttl)

    @property
    def _database(self) -> Database:
        if self._db is None:
            raise StoreUnavailable("the store is not open")
        return self._db

    @property
    def listener_pid(self) -> int | None:
        """Server pid of the LISTEN connection, None while it is down (tests terminate it)."""
        return self._listener.backend_pid

    @property
    def listener_connects(self) -> int:
        """How many times the LISTEN connection was established (a reconnect adds one)."""
        return self._listener.connects

    @property
    def listener_channels(self) -> frozenset[str]:
        """The channels LISTENed now: the change channel only once something waited for a change."""
        return self._listener.channels

    # -- write side ---------------------------------------------------------------------------
    async def submit(
        self, new: NewRequest, idempotency: IdempotencyKey | None = None
    ) -> tuple[Request, bool]:
        """Request row + `created` event (+ idempotency key), committed; then wake workers.
        Without a key, concurrent submits share one statement (group commit)."""
        now = self._clock.now()
        if new.session_id is not None:  # one turn per session: its own transaction
            found, original, cancelled = await self._database.run(
                lambda c: turns.submit_session(c, new, idempotency, now)
            )
            if original is not None:
                return rules.live(original.id, original, self._cutoff()), False
            assert found is not None
            row = found
            if cancelled:
                self._hub.cancel.set()
                self._after(cancelled)
        elif idempotency is None:
            row = await self._submits(ops.Submission(new, now))
        else:
            found, original = await self._database.run(
                lambda c: ops.submit_keyed(c, new, idempotency, now), tx=False
            )
            if original is not None:  # the key's original: expired like any read of it
                return rules.live(original.id, original, self._cutoff()), False
            assert found is not None
            row = found
        req = rules.to_request(row)
        self._hub.work.set()
        self._hub.changed(req.id, req.seq)
        return req, True

    # -- read side ----------------------------------------------------------------------------
    async def get(self, request_id: str) -> Request:
        """NotFound if unknown, RequestExpired if purged to a tombstone or past result_ttl."""
        cutoff = self._cutoff()
        return ops.live(request_id, await self._database.fetchrow(sql.GET, request_id, read=True), cutoff)

    async def list(
        self,
        *,
        owner: str | None,
        user_id: str | None,
        status: Status | None = None,
        limit: int = 50,
        cursor: str | None = None,
        match: Match | None = None,
    ) -> Page:
        """Newest first, keyset-paginated on (created_at, id); tombstones and requests past
        result_ttl excluded."""
        cutoff = self._cutoff()
        query = listing.list_query(
            owner, user_id, status, limit, cursor, mark=sql.mark, alias="r", cutoff=cutoff, match=match
        )
        text = sql.LIST.format(where=query.where, order=query.order, limit=query.fetch)
        rows = await self._database.fetch(text, *query.params, read=True)
        return query.page([rules.to_request(row) for row in rows])

    async def events_since(
        self, request_id: str, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[Event]:
        """Events after `after_seq`, in order (empty for an unknown request)."""
        rows = await self._database.fetch(sql.EVENTS_SINCE, request_id, after_seq, max(0, limit), read=True)
        return [rules.to_event(row) for row in rows]

    async def wait_for_change(self, request_id: str, after_seq: int, timeout: float) -> bool:
        """True once seq > after_seq, False at timeout; NotFound for an unknown request.

        The waiter is registered BEFORE the row is read, so a change committed after the read
        wakes it (its NOTIFY carries the new seq: no re-read needed). While the LISTEN connection
        is down, the row is re-read every poll_interval instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._hub.watch(request_id, after_seq)
        try:
            while True:
                if waiter.seen_seq > after_seq or await self._seq_of(request_id) > after_seq:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                await waiter.wait(self._wait_step(remaining))
        finally:
            self._hub.unwatch(request_id, waiter)

    async def _seq_of(self, request_id: str) -> int:
        row = await self._database.fetchrow(sql.SEQ_OF, request_id, read=True)
        if row is None:
            raise rules.not_found(request_id)
        return int(row["seq"])

    async def list_attempts(self, request_id: str) -> builtins.list[AttemptRecord]:
        """The request's attempts, oldest first (empty for an unknown request)."""
        rows = await self._database.fetch(sql.LIST_ATTEMPTS, request_id, read=True)
        return [attempt_log.to_record(row) for row in rows]

    async def duration_history(self, agent: str, limit: int = 50) -> builtins.list[float]:
        """Seconds from start to completion of the agent's latest completed requests."""
        rows = await self._database.fetch(sql.DURATIONS, agent, max(0, limit), read=True)
        return [float(row["seconds"]) for row in rows]

    async def queue_stats(self) -> QueueStats:
        """The queue by status and agent, and its oldest pending request (store/queue.py)."""
        stats, changes = to_queue_stats(await self._database.fetch(QUEUE_SQL, read=True))
        if changes > FOLD_AT:
            await self._database.run(lambda c: c.execute(PG_FOLD), tx=False)
        return stats

    # -- work ---------------------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, limits: Limits | None = None
    ) -> builtins.list[Claim]:
        """Lease up to `limit` runnable requests: fair and capped (`turns.claim`, one transaction)
        or, with limits.fair off, oldest first in one statement (SKIP LOCKED); the new attempt
        number is the fencing token."""
        self.worker_locks.check(worker_id)  # a worker whose session lock is lost must not claim
        if limit <= 0:
            return []
        now, lim = self._clock.now(), limits or Limits()
        if lim.fair:
            rows = await self._database.run(
                lambda c: turns.claim(c, worker_id, limit, lease_seconds, now, lim)
            )
        else:
            rows = await self._database.fetch(sql.CLAIM, now, limit, worker_id, now + lease_seconds)
        claims = [Claim(request=rules.to_request(row), attempt=row["attempt"]) for row in rows]
        for c in claims:
            self._hub.changed(c.request.id, c.request.seq)
        return claims

    async def queue_info(self, request: Request, limits: Limits) -> QueueInfo:
        now = self._clock.now()
        return await self._database.run(lambda c: turns.queue_info(c, request, now, limits), read=True)

    async def queued_count(self, owner: str, user_id: str, cap: int) -> int:
        row = await self._database.fetchrow(fair_sql.QUEUED_COUNT, owner, user_id, cap, read=True)
        return int(row[0]) if row is not None else 0

    async def heartbeat(self, worker_id: str, attempts: dict[str, int], lease_seconds: float) -> set[str]:
        """Extend held leases; returns the ids this worker no longer holds."""
        if not attempts:
            return set()
        ids = builtins.list(attempts)
        expiry = self._clock.now() + lease_seconds
        rows = await self._database.fetch(sql.HEARTBEAT, ids, [attempts[i] for i in ids], worker_id, expiry)
        return set(ids) - {row["id"] for row in rows}

    async def append_event(
        self,
        request_id: str,
        attempt: int,
        type: str,
        data: dict[str, Any],
        progress: Progress | None = None,
    ) -> Event:
        """An event of the running attempt (and its progress); LeaseLost if stale. Concurrent
        appends (many running attempts streaming) share one commit."""
        now = self._clock.now()
        progress_doc = progress.to_dict() if progress else None
        seq = await self._appends(ops.Append(request_id, attempt, progress_doc, type, data, now))
        self._hub.changed(request_id, seq)
        return Event(request_id=request_id, seq=seq, type=type, data=data, at=now)

    async def retry_later(self, request_id: str, attempt: int, run_at: float, error: ErrorInfo) -> Request:
        """A failed attempt to retry at `run_at`: lease released, a `retry` event; LeaseLost if stale."""
        now = self._clock.now()
        data, tb = rules.retry_data(attempt, run_at, error), attempt_log.error_traceback(error)
        allowed = sql.statuses(sources_of(Status.PROCESSING))
        row = await self._database.fetchrow(
            sql.RETRY_LATER, request_id, attempt, run_at, error.to_dict(), now, data, allowed, tb
        )
        if row is None:
            raise rules.lease_lost(request_id, attempt)
        req = rules.to_request(row)
        self._after([req], work=run_at <= now)
        return req

    async def finish(
        self,
        request_id: str,
        attempt: int,
        status: Status,
        *,
        result: Result | None = None,
        error: ErrorInfo | None = None,
    ) -> Request:
        """Terminal state + terminal event + outbox row in one transaction (shared with concurrent
        finishes: group commit); LeaseLost if stale."""
        rules.check_finish_status(status)
        now = self._clock.now()
        req = await self._finishes(ops.Finish(request_id, attempt, status, result, error, now))
        self._after([req])
        return req

    async def request_cancel(self, request_id: str) -> tuple[Request, str]:
        """Pending or processing -> cancelled at once; "cooperative" when a worker held a lease.
        Workers in every process are woken through NOTIFY."""
        now = self._clock.now()
        req, how, changed = await self._database.run(lambda c: ops.request_cancel(c, request_id, now))
        if changed:
            self._hub.cancel.set()
            self._after([req])
        return req, how

    async def cancelled_among(self, request_ids: builtins.list[str]) -> set[str]:
        """The ids (of these) that are cancelled or otherwise terminal."""
        if not request_ids:
            return set()
        ids = builtins.list(dict.fromkeys(request_ids))
        rows = await self._database.fetch(sql.TERMINAL_AMONG, ids, sql.TERMINAL_VALUES, read=True)
        return {row["id"] for row in rows}

    async def requeue_expired(self) -> int:
        """Take back requests whose worker died (lease expired); returns how many."""
        now = self._clock.now()
        touched = await self._database.run(lambda c: ops.requeue_expired(c, now))
        self._after(touched, work=any(not r.is_terminal for r in touched))
        return len(touched)

    async def register_worker(self, worker_id: str, process: WorkerProcess | None = None) -> None:
        """Hold the worker's session lock on the lock connection and write its row (`workers`)."""
        await self.worker_locks.register(worker_id, process or processes.this_process())

    async def requeue_dead(self) -> int:
        """Take over the requests of workers whose session lock is free (or local process gone)."""
        touched = await workers.requeue_dead(self._database, self._clock.now())
        self._after(touched, work=any(not r.is_terminal for r in touched))
        return len(touched)

    async def wait_for_work(self, timeout: float) -> None:
        """Return on a submit or due retry in any process (NOTIFY), or after `timeout`."""
        await self._hub.work.wait(self._wait_step(timeout))

    async def wait_for_cancellation(self, timeout: float) -> None:
        """Return on a cancel in any process (NOTIFY), or after `timeout`."""
        await self._hub.cancel.wait(self._wait_step(timeout))

    def _wait_step(self, timeout: float) -> float:
        """Without the LISTEN connection, waits end every poll_interval so callers re-check."""
        return timeout if self._hub.connected else min(timeout, self._poll)

    # -- webhook outbox -----------------------------------------------------------------------
    async def claim_outbox(
        self, worker_id: str, limit: int, lease_seconds: float
    ) -> builtins.list[OutboxItem]:
        """Lease up to `limit` due deliveries, oldest due first."""
        if limit <= 0:
            return []
        now = self._clock.now()
        rows = await self._database.fetch(sql.CLAIM_OUTBOX, now, limit, worker_id, now + lease_seconds)
        return rules.to_outbox(rows)

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: float | None,
    ) -> Delivery:
        """One attempt: 2xx -> delivered; else retrying at next_attempt_at, or failed if None."""
        now = self._clock.now()
        return await self._database.run(
            lambda c: outbox_ops.record_attempt(
                c, delivery_id, status_code, error, duration_ms, next_attempt_at, now
            )
        )

    async def list_deliveries(self, request_id: str) -> builtins.list[Delivery]:
        """Deliveries of the request with their attempts, oldest first."""
        return await self._database.run(
            lambda c: outbox_ops.deliveries(c, sql.DELIVERIES_OF, request_id), read=True
        )

    async def enqueue_redelivery(self, request_id: str) -> Delivery:
        """A new delivery of the terminal request's document, due now."""
        now = self._clock.now()
        delivery = await self._database.run(lambda c: ops.enqueue_redelivery(c, request_id, now))
        self._hub.outbox.set()
        return delivery

    async def wait_for_outbox(self, timeout: float) -> None:
        """Return on a terminal write with a webhook in any process (NOTIFY), or after timeout."""
        await self._hub.outbox.wait(self._wait_step(timeout))

    # -- housekeeping -------------------------------------------------------------------------
    async def migrate(self) -> builtins.list[str]:
        """Apply pending migrations (one transaction, under an advisory lock: safe to run from
        several processes at once). Returns the names applied."""
        return await self._database.run(ops.migrate)

    async def schema_current(self) -> bool:
        """True when every packaged migration is recorded as applied (`/ready` asks this)."""
        applied = await self._database.run(ops.applied_migrations, tx=False, read=True)
        return {name for name, _ in sql.migrations()} <= applied

    async def ping(self) -> None:
        """One round trip; StoreUnavailable if the database does not answer."""
        await self._database.run(lambda c: c.fetchval("SELECT 1"), tx=False, read=True)

    async def get_or_create_setting(self, name: str, value: str) -> str:
        """The stored value of `name`; `value` is stored first when there is none."""
        now = self._clock.now()
        return await self._database.run(lambda c: ops.get_or_create_setting(c, name, value, now))

    async def probe_write(self) -> None:
        """The probe row rewritten and committed (see Store.probe_write)."""
        now = self._clock.now()
        await self._database.run(lambda c: ops.probe_write(c, now))

    async def purge_expired(self, result_ttl: float, tombstone_ttl: float) -> int:
        """Tombstone expired results, drop old tombstones and keys, one short transaction per chunk."""
        return await ops.purge(self._database, self._clock, result_ttl, tombstone_ttl)

    async def close(self) -> None:
        """Flush queued submits, stop listening, close the pool (waiting, bounded, for connections
        in use); wake every waiter. Idempotent."""
        for batcher in (self._submits, self._appends, self._finishes):
            await batcher.wait_idle()
        await self._listener.close()
        await self.worker_locks.close()
        if self._db is not None:
            await self._db.close()
        self._hub.wake_all()

    def _after(self, requests: builtins.list[Request], *, work: bool = False) -> None:
        """After a commit by this store: wake its own waiters at once (`Hub.committed`)."""
        self._hub.committed(requests, work=work)
