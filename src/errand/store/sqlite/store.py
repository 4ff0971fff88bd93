"""SqliteStore: the Store protocol on one SQLite file (WAL), with group commit and wake-ups.

Writes go to the single writer thread of `connections` (many concurrent writes share one
transaction and one fsync; a result is returned only once committed); reads run on a small pool
of reader connections beside it. After a commit, in-process waiters are woken at once, and other
processes on the same file through `notify` (Unix datagram sockets, POSIX only; then
`cross_process_wakeups` is True), both by `wakeups`. Those wake-ups are hints: every wait still
returns within `poll_interval` so callers re-check, and `wait_for_change` re-reads the row itself.
The SQL lives in `writes`, `reads` and `schema`, the rules it shares with PostgreSQL in
`store.rules`; this module is the asyncio face of them.
"""

from __future__ import annotations

import builtins
from typing import Any

from errand.clock import Clock
from errand.console_models import Match
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
from errand.store.processes import WorkerProcess
from errand.store.sqlite import attempts, inputs, reads, schedules, scheduling, schema, upkeep, writes
from errand.store.sqlite.connections import Readers, Writer
from errand.store.sqlite.console import SqliteConsole
from errand.store.sqlite.wakeups import Wakeups

Connections = tuple[Writer, Readers]
"""The writer thread and the reader pool of one file (`upkeep.connections`)."""


class SqliteStore(SqliteConsole):
    """Durable requests, events, leases and outbox in one SQLite database file."""

    cross_process_wakeups = False
    """Per instance: True once the cross-process notifier is bound (see `notify`)."""

    def __init__(
        self, path: str, clock: Clock, synchronous: str, ttl: float | None, conns: Connections, wake: Wakeups
    ) -> None:
        self.path, self.synchronous = path, synchronous
        self._clock, self._result_ttl = clock, ttl
        self._writer, self._readers = conns
        self._wake = wake
        self._schedules = schedules.Schedules(self._writer, self._readers, self._wake, clock)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock,
        synchronous: str = "full",
        poll_interval: float = 0.5,
        migrate: bool = True,
        pool_size: int = 4,
        busy_timeout: float = 5.0,
        result_ttl: float | None = None,
    ) -> SqliteStore:
        """Open the file (created if missing), start the writer, and migrate unless told not to.
        `synchronous`: "full" fsyncs every commit; "normal" may lose the last commits on power loss.
        `pool_size`: reader connections. `busy_timeout`: how long a write waits (from when it
        was asked) for another process's lock before StoreUnavailable. `result_ttl`: seconds a
        finished request stays readable (None: until purged)."""
        path = upkeep.open_path(url, synchronous, poll_interval, busy_timeout)
        sync, readers = synchronous.lower(), max(1, min(pool_size, 16))
        conns = upkeep.connections(path, sync, readers, busy_timeout)
        store = cls(path, clock, sync, result_ttl, conns, Wakeups(clock, poll_interval))
        await store._writer.start()
        store.cross_process_wakeups = store._wake.start_notifier(path)
        try:
            if migrate:
                await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    def _cutoff(self) -> float | None:
        """Finished requests completed at or before this are expired to readers (rules.live)."""
        return rules.result_cutoff(self._clock.now(), self._result_ttl)

    @property
    def commits(self) -> int:
        """Write transactions committed by this instance (group commit: fewer than writes)."""
        return self._writer.commits

    # -- write side ---------------------------------------------------------------------------
    async def submit(
        self, new: NewRequest, idempotency: IdempotencyKey | None = None
    ) -> tuple[Request, bool]:
        """Request row + idempotency key + `created` event, committed; then wake workers."""
        now = self._clock.now()
        req, created = await self._writer.submit(
            lambda c: writes.submit(c, new, idempotency, now), self._wake.after_submit
        )
        if not created:  # the key's original: expired like any read of it
            rules.live(req.id, req, self._cutoff())
        return req, created

    # -- read side ----------------------------------------------------------------------------
    async def get(self, request_id: str) -> Request:
        """NotFound if unknown, RequestExpired if purged to a tombstone or past result_ttl."""
        cutoff = self._cutoff()
        return await self._readers.run(lambda c: reads.get(c, request_id, cutoff))

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
        """Newest first, keyset-paginated on (created_at, id); tombstones and expired excluded."""
        cutoff = self._cutoff()
        return await self._readers.run(
            lambda c: reads.list_requests(c, owner, user_id, status, limit, cursor, cutoff, match)
        )

    async def events_since(
        self, request_id: str, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[Event]:
        """Events after `after_seq`, in order (empty for an unknown request)."""
        return await self._readers.run(lambda c: reads.events_since(c, request_id, after_seq, max(0, limit)))

    async def wait_for_change(self, request_id: str, after_seq: int, timeout: float) -> bool:
        """True once seq > after_seq, False at timeout; NotFound if unknown (Wakeups.wait_for_change)."""
        return await self._wake.wait_for_change(
            request_id, after_seq, timeout, lambda: self._readers.run(lambda c: reads.seq_of(c, request_id))
        )

    async def list_attempts(self, request_id: str) -> builtins.list[AttemptRecord]:
        """The request's attempts, oldest first (empty for an unknown request)."""
        return await self._readers.run(lambda c: attempts.list_attempts(c, request_id))

    async def duration_history(self, agent: str, limit: int = 50) -> builtins.list[float]:
        """Seconds from start to completion of the agent's latest completed requests."""
        return await self._readers.run(lambda c: reads.duration_history(c, agent, max(0, limit)))

    async def queue_stats(self) -> QueueStats:
        """The queue by status and agent, and its oldest pending request (store/queue.py)."""
        return await upkeep.queue_stats(self._readers, self._writer)

    # -- work ---------------------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, limits: Limits | None = None
    ) -> builtins.list[Claim]:
        """Lease up to `limit` runnable requests; the new attempt number is the fencing token."""
        if limit <= 0:
            return []
        now, rules_ = self._clock.now(), limits or Limits()
        claimed = await self._writer.submit(
            lambda c: writes.claim(c, worker_id, limit, lease_seconds, now, rules_),
            self._wake.after_claim,
            relaxed=True,
        )
        return [Claim(request=r, attempt=r.attempt) for r in claimed]

    async def queue_info(self, request: Request, limits: Limits) -> QueueInfo:
        return await self._readers.run(lambda c: scheduling.queue_info(c, request, self._clock.now(), limits))

    async def queued_count(self, owner: str, user_id: str, cap: int) -> int:
        return await self._readers.run(lambda c: scheduling.queued_count(c, owner, user_id, cap))

    async def heartbeat(self, worker_id: str, attempts: dict[str, int], lease_seconds: float) -> set[str]:
        """Extend held leases; returns the ids this worker no longer holds."""
        if not attempts:
            return set()
        now, held = self._clock.now(), dict(attempts)  # copied here: the writer thread reads it later
        return await self._writer.submit(
            lambda c: writes.heartbeat(c, worker_id, held, lease_seconds, now), relaxed=True
        )

    async def append_event(
        self,
        request_id: str,
        attempt: int,
        type: str,
        data: dict[str, Any],
        progress: Progress | None = None,
    ) -> Event:
        """An event of the running attempt (and its progress); LeaseLost if stale."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: writes.append_event(c, request_id, attempt, type, data, progress, now),
            self._wake.after_event,
            relaxed=True,  # progress and content deltas: a lost one is re-reported or superseded
        )

    async def retry_later(self, request_id: str, attempt: int, run_at: float, error: ErrorInfo) -> Request:
        """A failed attempt to retry at `run_at`; LeaseLost if stale."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: writes.retry_later(c, request_id, attempt, run_at, error, now),
            self._wake.after_request,
        )

    async def finish(
        self,
        request_id: str,
        attempt: int,
        status: Status,
        *,
        result: Result | None = None,
        error: ErrorInfo | None = None,
    ) -> Request:
        """Terminal state + terminal event + outbox row in one transaction; LeaseLost if stale."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: writes.finish(c, request_id, attempt, status, result, error, now),
            self._wake.after_request,
        )

    async def request_cancel(self, request_id: str) -> tuple[Request, str]:
        """Pending or processing -> cancelled at once; "cooperative" when a worker held a lease."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: writes.request_cancel(c, request_id, now), self._wake.after_cancel
        )

    async def ask_input(self, request_id: str, attempt: int, ask: InputAsk, state: Any = None) -> Request:
        """The running attempt asks: input_required, lease released, event, outbox row; LeaseLost if stale."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: inputs.ask(c, request_id, attempt, ask, state, now), self._wake.after_request
        )

    async def answer_input(
        self, request_id: str, input_id: str, value: Any, message_id: str | None = None
    ) -> tuple[Request, bool]:
        """The answer kept, the request pending again (workers woken); idempotent per input id."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: inputs.answer(c, request_id, input_id, value, message_id, now), self._wake.after_submit
        )

    async def expire_inputs(self, limit: int = 100) -> builtins.list[Request]:
        """End the requests whose question expired unanswered, by its on_timeout."""
        now = self._clock.now()
        return await self._writer.submit(lambda c: inputs.expire(c, limit, now), self._wake.after_requests)

    async def set_webhook(self, request_id: str, url: str | None) -> Request:
        """The URL set on an unfinished request (one writer: the check and the write agree)."""
        now = self._clock.now()
        return await self._writer.submit(lambda c: writes.set_webhook(c, request_id, url, now))

    async def cancelled_among(self, request_ids: builtins.list[str]) -> set[str]:
        """The ids (of these) that are cancelled or otherwise terminal."""
        ids = builtins.list(dict.fromkeys(request_ids))
        return await self._readers.run(lambda c: reads.cancelled_among(c, ids)) if ids else set()

    async def requeue_expired(self) -> builtins.list[Request]:
        """Take back requests whose worker died (lease expired); returns them as they are now."""
        now = self._clock.now()
        after = self._wake.after_requests
        return await self._writer.submit(lambda c: writes.requeue_expired(c, now), after)

    async def register_worker(self, worker_id: str, process: WorkerProcess | None = None) -> None:
        """Record the worker's process (None: this one), so that its death is seen at once."""
        now, found = self._clock.now(), process or processes.this_process()
        await self._writer.submit(lambda c: writes.register_worker(c, worker_id, found, now))

    async def requeue_dead(self) -> builtins.list[Request]:
        """Take back the leases of workers of this node whose process is gone (`upkeep`)."""
        now = self._clock.now()
        return await upkeep.requeue_dead(self._readers, self._writer, now, self._wake.after_requests)

    async def wait_for_work(self, timeout: float) -> None:
        """Return on a submit (here or notified from another process), or within min(timeout, poll)."""
        await self._wake.wait(self._wake.work, timeout)

    async def wait_for_cancellation(self, timeout: float) -> None:
        """Return on a cancel (here or notified from another process), or within min(timeout, poll)."""
        await self._wake.wait(self._wake.cancels, timeout)

    # -- webhook outbox -----------------------------------------------------------------------
    async def claim_outbox(
        self, worker_id: str, limit: int, lease_seconds: float
    ) -> builtins.list[OutboxItem]:
        """Lease up to `limit` due deliveries, oldest due first."""
        if limit <= 0:
            return []
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: writes.claim_outbox(c, worker_id, limit, lease_seconds, now)
        )

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
        return await self._writer.submit(
            lambda c: writes.record_attempt(
                c, delivery_id, status_code, error, duration_ms, next_attempt_at, now
            )
        )

    async def list_deliveries(self, request_id: str) -> builtins.list[Delivery]:
        """Deliveries of the request with their attempts, oldest first."""
        return await self._readers.run(lambda c: reads.list_deliveries(c, request_id), snapshot=True)

    async def enqueue_redelivery(self, request_id: str) -> Delivery:
        """A new delivery of the terminal request's document, due now."""
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: writes.enqueue_redelivery(c, request_id, now), self._wake.after_redelivery
        )

    async def wait_for_outbox(self, timeout: float) -> None:
        """Return on a terminal write with a webhook (here or notified), or within min(timeout, poll)."""
        await self._wake.wait(self._wake.outbox, timeout)

    # -- schedules (store/sqlite/schedules.py) ------------------------------------------------
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
        """Apply pending migrations under the write lock (safe across processes)."""
        return await self._writer.submit(schema.migrate)

    async def schema_current(self) -> bool:
        """True when every packaged migration is recorded (or adopted) as applied (`/ready`)."""
        return not await self._readers.run(schema.pending)

    async def ping(self) -> None:
        """Read the database header; StoreUnavailable if that fails."""
        await self._readers.run(schema.schema_version)

    async def get_or_create_setting(self, name: str, value: str) -> str:
        """The stored value of `name`; `value` is stored first when there is none."""
        now = self._clock.now()
        return await self._writer.submit(lambda c: writes.get_or_create_setting(c, name, value, now))

    async def probe_write(self) -> None:
        """A real commit of the probe row through the writer: its lock wait, fsync, file check."""
        now = self._clock.now()
        await self._writer.submit(lambda c: writes.probe_write(c, now), lock_wait=rules.PROBE_LOCK_WAIT)

    async def purge_expired(self, result_ttl: float, tombstone_ttl: float) -> int:
        """Tombstone expired results, drop old tombstones and keys, one short transaction per chunk."""
        return await upkeep.purge(self._writer, self._clock, result_ttl, tombstone_ttl)

    async def forget(self, request_id: str) -> None:
        """A finished request tombstoned now, in one write transaction (upkeep.forget)."""
        now, cutoff = self._clock.now(), self._cutoff()
        await self._writer.submit(lambda c: upkeep.forget(c, request_id, now, cutoff))

    async def close(self) -> None:
        """Commit what is queued, stop the threads, close connections, release waiters."""
        await self._writer.stop()
        await self._readers.close()
        self._wake.close()  # after the writer: the last commits' wake-ups are sent first
