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
    InputAsk,
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
)
from errand.schedule_models import FireOutcome, Firing, Schedule
from errand.store import processes, rules
from errand.store.postgres import inputs, ops, outbox_ops, reads, schedules, turns, upkeep, workers
from errand.store.postgres.console import PostgresConsole
from errand.store.postgres.listen import Hub, Listener
from errand.store.postgres.pool import CONNECT_TIMEOUT, Database, connect
from errand.store.processes import WorkerProcess


class PostgresStore(PostgresConsole):
    """Durable requests, events, leases and outbox in a PostgreSQL database shared by processes."""

    cross_process_wakeups = True

    def __init__(self, dsn: str, *, clock: Clock, poll_interval: float, result_ttl: float | None) -> None:
        self._result_ttl = result_ttl
        self._clock = clock
        self._db: Database | None = None
        self._hub = Hub(poll_interval)
        self.listener = Listener(lambda: connect(dsn, "errand-listen"), self._hub)  # tests watch it
        self._schedules = schedules.Schedules(lambda: self._database, self._hub, clock)
        self.worker_locks = workers.SessionLocks(lambda: connect(dsn, "errand-worker-lock"), clock)
        self._batches = ops.Batches(lambda: self._database)  # group commits

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
            await store.listener.start(wait=CONNECT_TIMEOUT)
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

    # -- write side ---------------------------------------------------------------------------
    async def submit(
        self, new: NewRequest, idempotency: IdempotencyKey | None = None
    ) -> tuple[Request, bool]:
        """Request row + `created` event (+ idempotency key), committed; then wake workers.
        Without a key or session, concurrent submits share one statement (group commit)."""
        now = self._clock.now()
        row, original, cancelled = await turns.submit(self._database, self._batches, new, idempotency, now)
        if original is not None:  # the key's original: expired like any read of it
            return rules.live(original.id, original, self._cutoff()), False
        assert row is not None
        req = rules.to_request(row)
        self._hub.submitted(req, cancelled)
        return req, True

    # -- read side ----------------------------------------------------------------------------
    async def get(self, request_id: str) -> Request:
        """NotFound if unknown, RequestExpired if purged to a tombstone or past result_ttl."""
        return await reads.get(self._database, request_id, self._cutoff())

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
        return await reads.list_page(
            self._database, owner, user_id, status, limit, cursor, self._cutoff(), match
        )

    async def events_since(
        self, request_id: str, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[Event]:
        """Events after `after_seq`, in order (empty for an unknown request)."""
        return await reads.events_since(self._database, request_id, after_seq, limit)

    async def wait_for_change(self, request_id: str, after_seq: int, timeout: float) -> bool:
        """True once seq > after_seq, False at timeout; NotFound if unknown (`Hub.wait_for_change`)."""
        return await self._hub.wait_for_change(
            request_id, after_seq, timeout, lambda: reads.seq_of(self._database, request_id)
        )

    async def list_attempts(self, request_id: str) -> builtins.list[AttemptRecord]:
        """The request's attempts, oldest first (empty for an unknown request)."""
        return await reads.list_attempts(self._database, request_id)

    async def duration_history(self, agent: str, limit: int = 50) -> builtins.list[float]:
        """Seconds from start to completion of the agent's latest completed requests."""
        return await reads.duration_history(self._database, agent, limit)

    async def queue_stats(self) -> QueueStats:
        """The queue by status and agent, and its oldest pending request (store/queue.py)."""
        return await reads.queue_stats(self._database)

    # -- work ---------------------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, limits: Limits | None = None
    ) -> builtins.list[Claim]:
        """Lease up to `limit` runnable requests: fair and capped (`turns.claim`, one statement)
        or, with limits.fair off, oldest first in one statement (SKIP LOCKED); the new attempt
        number is the fencing token."""
        self.worker_locks.check(worker_id)  # a worker whose session lock is lost must not claim
        if limit <= 0:
            return []
        now, lim = self._clock.now(), limits or Limits()
        rows = await turns.claim_rows(self._database, worker_id, limit, lease_seconds, now, lim)
        claims = [Claim(request=rules.to_request(row), attempt=row["attempt"]) for row in rows]
        self._after([c.request for c in claims])
        return claims

    async def queue_info(self, request: Request, limits: Limits) -> QueueInfo:
        now = self._clock.now()
        return await self._database.run(lambda c: turns.queue_info(c, request, now, limits), read=True)

    async def queued_count(self, owner: str, user_id: str, cap: int) -> int:
        return await reads.queued_count(self._database, owner, user_id, cap)

    async def heartbeat(self, worker_id: str, attempts: dict[str, int], lease_seconds: float) -> set[str]:
        """Extend held leases; returns the ids this worker no longer holds."""
        return await ops.heartbeat(self._database, worker_id, attempts, lease_seconds, self._clock.now())

    async def append_event(
        self,
        request_id: str,
        attempt: int,
        type: str,
        data: dict[str, Any],
        progress: Progress | None = None,
    ) -> Event:
        """An event of the running attempt (and its progress); LeaseLost if stale. Group-committed."""
        now = self._clock.now()
        progress_doc = progress.to_dict() if progress else None
        seq = await self._batches.append(ops.Append(request_id, attempt, progress_doc, type, data, now))
        self._hub.changed(request_id, seq)
        return Event(request_id=request_id, seq=seq, type=type, data=data, at=now)

    async def retry_later(self, request_id: str, attempt: int, run_at: float, error: ErrorInfo) -> Request:
        """A failed attempt to retry at `run_at`: lease released, a `retry` event; LeaseLost if stale."""
        now = self._clock.now()
        req = await ops.retry_later(self._database, request_id, attempt, run_at, error, now)
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
        """Terminal state + event + outbox row in one (group-committed) transaction; LeaseLost if stale."""
        rules.check_finish_status(status)
        now = self._clock.now()
        req = await self._batches.finish(ops.Finish(request_id, attempt, status, result, error, now))
        self._after([req])
        return req

    async def request_cancel(self, request_id: str) -> tuple[Request, str]:
        """Pending or processing -> cancelled; "cooperative" when leased; NOTIFY wakes every process."""
        now = self._clock.now()
        req, how, changed = await self._database.run(lambda c: ops.request_cancel(c, request_id, now))
        if changed:
            self._hub.cancelled([req])
        return req, how

    async def ask_input(self, request_id: str, attempt: int, ask: InputAsk, state: Any = None) -> Request:
        """The running attempt asks: input_required, lease released, event, outbox row; LeaseLost if stale."""
        now = self._clock.now()
        req = await self._database.run(lambda c: inputs.ask(c, request_id, attempt, ask, state, now))
        self._after([req])
        return req

    async def answer_input(
        self, request_id: str, input_id: str, value: Any, message_id: str | None = None
    ) -> tuple[Request, bool]:
        """The answer kept, the request pending again (NOTIFY wakes workers); idempotent per input id."""
        now = self._clock.now()
        req, changed = await self._database.run(
            lambda c: inputs.answer(c, request_id, input_id, value, message_id, now)
        )
        if changed:
            self._after([req], work=True)
        return req, changed

    async def expire_inputs(self, limit: int = 100) -> builtins.list[Request]:
        """End the requests whose question expired unanswered, by its on_timeout (SKIP LOCKED)."""
        now = self._clock.now()
        ended = await self._database.run(lambda c: inputs.expire(c, limit, now))
        self._after(ended, work=any(r.session_id is not None for r in ended))
        return ended

    async def set_webhook(self, request_id: str, url: str | None) -> Request:
        """The URL set on an unfinished request, its row locked for the check and the write."""
        now = self._clock.now()
        return await self._database.run(lambda c: ops.set_webhook(c, request_id, url, now))

    async def cancelled_among(self, request_ids: builtins.list[str]) -> set[str]:
        """The ids (of these) that are cancelled or otherwise terminal."""
        return await reads.cancelled_among(self._database, request_ids)

    async def requeue_expired(self) -> builtins.list[Request]:
        """Take back requests whose worker died (lease expired); returns them as they are now."""
        now = self._clock.now()
        return self._requeued(await self._database.run(lambda c: ops.requeue_expired(c, now)))

    async def register_worker(self, worker_id: str, process: WorkerProcess | None = None) -> None:
        """Hold the worker's session lock on the lock connection and write its row (`workers`)."""
        await self.worker_locks.register(worker_id, process or processes.this_process())

    async def requeue_dead(self) -> builtins.list[Request]:
        """Take over the requests of workers whose session lock is free (or local process gone)."""
        return self._requeued(await workers.requeue_dead(self._database, self._clock.now()))

    async def wait_for_work(self, timeout: float) -> None:
        """Return on a submit or due retry in any process (NOTIFY), or after `timeout`."""
        await self._hub.work.wait(self._hub.step(timeout))

    async def wait_for_cancellation(self, timeout: float) -> None:
        """Return on a cancel in any process (NOTIFY), or after `timeout`."""
        await self._hub.cancel.wait(self._hub.step(timeout))

    # -- webhook outbox -----------------------------------------------------------------------
    async def claim_outbox(
        self, worker_id: str, limit: int, lease_seconds: float
    ) -> builtins.list[OutboxItem]:
        """Lease up to `limit` due deliveries, oldest due first."""
        return await ops.claim_outbox(self._database, worker_id, limit, lease_seconds, self._clock.now())

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
        attempt = (delivery_id, status_code, error, duration_ms, next_attempt_at, now)
        return await self._database.run(lambda c: outbox_ops.record_attempt(c, *attempt))

    async def list_deliveries(self, request_id: str) -> builtins.list[Delivery]:
        """Deliveries of the request with their attempts, oldest first."""
        return await reads.deliveries(self._database, request_id)

    async def enqueue_redelivery(self, request_id: str) -> Delivery:
        """A new delivery of the terminal request's document, due now."""
        now = self._clock.now()
        delivery = await self._database.run(lambda c: ops.enqueue_redelivery(c, request_id, now))
        self._hub.outbox.set()
        return delivery

    async def wait_for_outbox(self, timeout: float) -> None:
        """Return on a terminal write with a webhook in any process (NOTIFY), or after timeout."""
        await self._hub.outbox.wait(self._hub.step(timeout))

    # -- schedules (store/postgres/schedules.py) ----------------------------------------------
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        return await self._schedules.create(schedule)

    async def update_schedule(self, schedule: Schedule) -> Schedule:
        return await self._schedules.update(schedule)

    async def get_schedule(self, key: str) -> Schedule:
        return await self._schedules.get(key)

    async def list_schedules(self) -> builtins.list[Schedule]:
        return await self._schedules.list_all()

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._schedules.delete(schedule_id)

    async def due_schedules(self, limit: int) -> builtins.list[Schedule]:
        return await self._schedules.due(limit)

    async def fire_schedule(self, firing: Firing) -> FireOutcome:
        return await self._schedules.fire(firing)

    # -- housekeeping -------------------------------------------------------------------------
    async def migrate(self) -> builtins.list[str]:
        """Apply pending migrations in one transaction under an advisory lock; the names applied."""
        return await self._database.run(upkeep.migrate)

    async def schema_current(self) -> bool:
        """True when every packaged migration is recorded as applied (`/ready` asks this)."""
        return await upkeep.schema_current(self._database)

    async def ping(self) -> None:
        """One round trip; StoreUnavailable if the database does not answer."""
        await self._database.run(lambda c: c.fetchval("SELECT 1"), tx=False, read=True)

    async def get_or_create_setting(self, name: str, value: str) -> str:
        """The stored value of `name`; `value` is stored first when there is none."""
        now = self._clock.now()
        return await self._database.run(lambda c: upkeep.get_or_create_setting(c, name, value, now))

    async def probe_write(self) -> None:
        """The probe row rewritten and committed (see Store.probe_write)."""
        now = self._clock.now()
        await self._database.run(lambda c: upkeep.probe_write(c, now))

    async def purge_expired(self, result_ttl: float, tombstone_ttl: float) -> int:
        """Tombstone expired results, drop old tombstones and keys, one short transaction per chunk."""
        return await upkeep.purge(self._database, self._clock, result_ttl, tombstone_ttl)

    async def forget(self, request_id: str) -> None:
        """A finished request tombstoned now: its row locked, checked and emptied in one transaction."""
        now, cutoff = self._clock.now(), self._cutoff()
        await self._database.run(lambda c: upkeep.forget(c, request_id, now, cutoff))

    async def close(self) -> None:
        """Flush the group commits, stop listening, close the pool (bounded wait); wake all. Idempotent."""
        await self._batches.wait_idle()
        await self.listener.close()
        await self.worker_locks.close()
        if self._db is not None:
            await self._db.close()
        self._hub.wake_all()

    def _after(self, requests: builtins.list[Request], *, work: bool = False) -> None:
        """After a commit by this store: wake its own waiters at once (`Hub.committed`)."""
        self._hub.committed(requests, work=work)

    def _requeued(self, touched: builtins.list[Request]) -> builtins.list[Request]:
        """Requests taken back from lost workers: waiters woken, workers too if some run again."""
        self._after(touched, work=any(not r.is_terminal for r in touched))
        return touched
