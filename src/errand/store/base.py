"""The Store protocol: the entire persistence contract, and nothing else.

Every method is one transaction with the guarantee written in its docstring. Backends return
`models` values and raise only `errors` types (driver exceptions are translated inside each
backend). `tests/store_contract.py` holds every backend to this text.

Time: backends take a `Clock` at construction and read `clock.now()` for every timestamp, so
tests drive lease expiry, backoff and TTL purge without sleeping.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol, runtime_checkable

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
from errand.store.console_store import ConsoleStore
from errand.store.processes import WorkerProcess
from errand.store.schedule_store import ScheduleStore


@runtime_checkable
class Store(ScheduleStore, ConsoleStore, Protocol):
    """Durable requests, their events, leases and the webhook outbox; schedules and the console
    come from its two parts (`schedule_store.ScheduleStore`, `console_store.ConsoleStore`)."""

    # -- capability flags (read by the contract suite; a difference is declared, never silent)
    cross_process_wakeups: bool
    """True when wait_for_work/wait_for_change/wait_for_cancellation are woken by writes made
    in *other* processes (PostgreSQL LISTEN/NOTIFY; SQLite on POSIX, by Unix datagrams). False:
    other processes' writes are seen by polling within `poll_interval`."""

    # -- write side ---------------------------------------------------------------------------
    async def submit(
        self, new: NewRequest, idempotency: IdempotencyKey | None = None
    ) -> tuple[Request, bool]:
        """Durably create a request (status pending, a `created` event, the idempotency key)
        in one transaction, committed before returning; then wake workers.

        Returns (request, created). With an idempotency key already stored in the same scope:
        same fingerprint -> (the original request, False); different fingerprint ->
        IdempotencyMismatch. A request id that already exists -> Conflict.
        Keys are kept for 24 h (see purge_expired).

        With a session_id, one turn per session, atomically: when the session has an unfinished
        request, `new.on_busy` decides: enqueue (held, `waiting_on` = "session", until the
        requests before it end, in submit order), reject (SessionBusy naming the active one),
        interrupt (every unfinished request of the session is cancelled with reason
        `superseded`, then this one runs).

        With `new.max_queued` (the per-user queue cap): QueueFull when the user already has
        that many pending requests, counted in the same transaction as the insert and
        serialized with every other submit of that user, so concurrent submits never pass the
        cap (an idempotent replay returns its original all the same)."""
        ...

    # -- read side ----------------------------------------------------------------------------
    async def get(self, request_id: str) -> Request:
        """The request. NotFound if unknown; RequestExpired if purged to a tombstone."""
        ...

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
        """Requests newest first (created_at, id), filtered by owner/user (None = any), status
        and `match` (agent, kind, created_at range), combined with AND; tombstones excluded.
        `cursor` is the opaque `next_cursor` of the previous page. Summaries: `result` is
        always None (the column is not read; `get` has it)."""
        ...

    async def events_since(
        self, request_id: str, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[Event]:
        """Events with seq > after_seq, in order. Seqs are 1, 2, 3... per request, no gaps."""
        ...

    async def wait_for_change(self, request_id: str, after_seq: int, timeout: float) -> bool:
        """Return True as soon as the request's latest event seq is > after_seq (at once if it
        already is), False after `timeout` seconds. Never misses a change made before the call."""
        ...

    async def list_attempts(self, request_id: str) -> builtins.list[AttemptRecord]:
        """The request's attempts, oldest first: one per claim, `running` until the write that
        ended it (finish, retry_later, request_cancel, requeue_expired, requeue_dead), which
        closed it in its own transaction with the outcome, the error and the error's traceback
        (cut to its last `attempt_log.MAX_TRACEBACK` characters). Empty for an unknown request;
        a tombstone's attempts are purged with its events."""
        ...

    async def duration_history(self, agent: str, limit: int = 50) -> builtins.list[float]:
        """Run durations (seconds, started_at -> completed_at) of the agent's most recent
        completed requests, newest first."""
        ...

    async def queue_stats(self) -> QueueStats:
        """Non-terminal requests (pending, processing) counted by (status, agent), and the
        created_at of the oldest pending one (None when none is pending): the truth every
        process on this database shares, read in one statement from the partial index
        `requests_queue`, so its cost follows the queue's size, not the history's."""
        ...

    # -- work ---------------------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, limits: Limits | None = None
    ) -> builtins.list[Claim]:
        """Atomically take up to `limit` runnable requests: status pending, or processing
        without a lease (waiting for a retry), with run_at <= now, not held behind an earlier
        request of their session. Order: fair (`store.fairness`): round-robin over fairness keys
        by each key's turn (weights from `limits`), FIFO by sort key (priority with aging) within
        a key; and never past a cap of `limits` (formation, per user, per agent), counted over
        every process's running requests. With `limits.fair` False: oldest run_at first, no
        caps. Each becomes processing with attempt += 1 (the fencing token), lease_owner =
        worker_id, lease expiry now + lease_seconds, started_at set if unset, and a `started`
        event. No request is ever handed to two claimers."""
        ...

    async def queue_info(self, request: Request, limits: Limits) -> QueueInfo:
        """For a pending request: why it waits (`session`, `retry`, `user_limit`,
        `agent_limit`, `formation_limit`, else `worker`) and its approximate queue position
        (`fairness.queue_position`); (None, None) for any other status."""
        ...

    async def queued_count(self, owner: str, user_id: str, cap: int) -> int:
        """How many pending requests the user has, counted up to `cap` (cost bounded by it)."""
        ...

    async def heartbeat(self, worker_id: str, attempts: dict[str, int], lease_seconds: float) -> set[str]:
        """Extend the leases of {request_id: attempt} held by worker_id. Returns the ids whose
        lease is no longer held by that attempt (taken over, cancelled, finished): stop them."""
        ...

    async def append_event(
        self,
        request_id: str,
        attempt: int,
        type: str,
        data: dict[str, Any],
        progress: Progress | None = None,
    ) -> Event:
        """Append an event (and, when given, set the request's progress) for the running
        attempt. LeaseLost if that attempt no longer holds the request."""
        ...

    async def retry_later(self, request_id: str, attempt: int, run_at: float, error: ErrorInfo) -> Request:
        """Record a failed attempt that will be retried: failures += 1, lease released,
        run_at set, a `retry` event. Status stays processing. LeaseLost if stale."""
        ...

    async def finish(
        self,
        request_id: str,
        attempt: int,
        status: Status,
        *,
        result: Result | None = None,
        error: ErrorInfo | None = None,
    ) -> Request:
        """End the attempt in a terminal status (completed with result, failed with error).
        In the same transaction: completed_at, the terminal event, and the webhook outbox row
        when the request has a webhook URL. LeaseLost if the attempt is stale or the request
        is already terminal (e.g. cancelled meanwhile): nothing is written then."""
        ...

    async def request_cancel(self, request_id: str) -> tuple[Request, str]:
        """Cancel: pending, input_required, or processing -> cancelled at once (terminal, `cancelled` event,
        outbox row if a webhook URL), in one transaction; then wake cancellation watchers.
        Returns (request, "immediate") when no attempt was running, (request, "cooperative")
        when a worker holds a lease (it stops the attempt on its next watch, within a second).
        Already cancelled -> returned unchanged ("immediate"). Completed/failed -> Conflict.
        NotFound/RequestExpired as get()."""
        ...

    # -- human input (input_required; rules in store/input_rules.py) ----------------------------
    async def ask_input(self, request_id: str, attempt: int, ask: InputAsk, state: Any = None) -> Request:
        """The running attempt asks a question and stops: in one transaction, processing ->
        input_required with `input_request` = ask (and `state`, an agent's resumption data, kept
        as `input_state`), the lease released (the worker's slot is free), the attempt closed
        `input_required`, an `input_required` event, and, when the request has a webhook URL, an
        outbox row carrying the status document (status input_required). LeaseLost if the
        attempt no longer holds the request (fenced like `finish`); InvalidRequest for an
        unknown on_timeout."""
        ...

    async def answer_input(
        self, request_id: str, input_id: str, value: Any, message_id: str | None = None
    ) -> tuple[Request, bool]:
        """Answer the outstanding question: in one transaction the answer is appended to
        `inputs` (ask order), the question cleared, input_required -> pending, runnable now
        with its priority and fairness key unchanged, an `input_received` event; then workers
        are woken. Returns (request, True). The same input id answered before with an equal
        value (as JSON) -> (request, False), nothing written. Another value ->
        InputAlreadyAnswered. Not the outstanding question (never asked; the request resumed,
        ended or was cancelled) -> InputNotOutstanding. Concurrent answers: exactly one writes.
        `message_id` (an A2A answer's message id) is kept with the answer, so a retried send of
        that message is recognised (`Request.input_messages`). NotFound/RequestExpired as get()."""
        ...

    async def expire_inputs(self, limit: int = 100) -> builtins.list[Request]:
        """Up to `limit` requests in input_required whose question's expires_at <= now, ended by
        the ask's on_timeout: failed, or cancelled, each with error type INPUT_TIMEOUT, in one
        transaction per request as `finish` ends one (terminal event, outbox row, the session's
        next turn released). Exactly once across processes (a guarded update: a request another
        process ended, answered or cancelled meanwhile is skipped). Returns those ended."""
        ...

    async def set_webhook(self, request_id: str, url: str | None) -> Request:
        """Set (None: remove) the webhook URL of an unfinished request, in one transaction with
        the check: the terminal write that ends it enqueues the delivery to the URL set last.
        Already terminal -> Conflict (its delivery was decided); NotFound/RequestExpired as get()."""
        ...

    async def cancelled_among(self, request_ids: builtins.list[str]) -> set[str]:
        """Which of these ids are now cancelled (or otherwise terminal): running attempts of
        them must stop."""
        ...

    async def requeue_expired(self) -> builtins.list[Request]:
        """Requests in processing whose lease expired (their worker died): failures += 1, and
        either made claimable now, or failed ("Worker lost ...") when max_attempts is reached.
        Returns the requests touched, each as it is now (pending again, or failed), so the
        caller can log their ids and count the failed ones."""
        ...

    async def register_worker(self, worker_id: str, process: WorkerProcess | None = None) -> None:
        """Register the worker that claims as `worker_id`, running in `process` (None: this
        one), so that its death is seen at once (`requeue_dead`) rather than after its leases.
        On PostgreSQL the store also holds a session advisory lock for it on a dedicated
        connection until close(); while that connection is down (reconnecting), claim() for
        that worker raises StoreUnavailable, since its leases may be taken over meanwhile.
        Registering an id again replaces its process."""
        ...

    async def requeue_dead(self) -> builtins.list[Request]:
        """Requests leased by a registered worker known to be dead, taken over at once exactly
        as requeue_expired does (failures += 1, claimable now or failed when spent; "Worker
        lost: its worker died"): dead when its process ran on this node and is gone (pid free or
        reused by a process started at another time, see `store.processes`), or, on PostgreSQL,
        when its session lock is no longer held. Dead workers' rows are removed. A worker that
        is not registered, or runs elsewhere and (on SQLite) cannot be checked, is left to its
        lease. Cheap when nobody died (one read). Returns the requests touched, as requeue_expired."""
        ...

    async def wait_for_work(self, timeout: float) -> None:
        """Return when new work may be claimable (a submit, a retry coming due is NOT signalled),
        or after `timeout`."""
        ...

    async def wait_for_cancellation(self, timeout: float) -> None:
        """Return when some request was cancelled (anywhere this backend can see), or after
        `timeout`."""
        ...

    # -- webhook outbox -----------------------------------------------------------------------
    async def claim_outbox(
        self, worker_id: str, limit: int, lease_seconds: float
    ) -> builtins.list[OutboxItem]:
        """Take up to `limit` deliveries due now (next_attempt_at <= now, not delivered/failed,
        not leased by a live dispatcher), leasing them for lease_seconds."""
        ...

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: float | None,
    ) -> Delivery:
        """Record one delivery attempt. A 2xx status_code -> delivered. Else: next_attempt_at
        given -> retrying at that time; None -> failed (retries exhausted)."""
        ...

    async def list_deliveries(self, request_id: str) -> builtins.list[Delivery]:
        """Deliveries of a request with every attempt, oldest first."""
        ...

    async def enqueue_redelivery(self, request_id: str) -> Delivery:
        """A new delivery of a terminal request's webhook document, due now.
        Conflict if the request is not terminal or has no webhook URL."""
        ...

    async def wait_for_outbox(self, timeout: float) -> None:
        """Return when a delivery may have become due (a terminal write), or after timeout."""
        ...

    # -- housekeeping -------------------------------------------------------------------------
    async def migrate(self) -> builtins.list[str]:
        """Apply pending migrations (safe to run concurrently from several processes).
        Returns the names of the migrations applied."""
        ...

    async def schema_current(self) -> bool:
        """True when every known migration is applied."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...

    async def get_or_create_setting(self, name: str, value: str) -> str:
        """The value stored under `name`, shared by every process on this database; when none is
        stored yet, `value` is stored first (insert if absent, then read, in one transaction).
        Callers racing on one database, in any processes, all get the one value that won; it
        survives reopen and is never purged."""

    async def probe_write(self) -> None:
        """Commit one small real write (the `write_probe` row), the way a submit commits: raise
        StoreUnavailable unless the database takes writes now (its lock can be had within
        PROBE_LOCK_WAIT s, the disk has room, it is not read-only, the file is still the one
        opened). `/ready` asks this; what a read answers proves none of it."""
        ...

    async def purge_expired(self, result_ttl: float, tombstone_ttl: float) -> int:
        """Terminal requests completed more than result_ttl ago become tombstones (input,
        result, error, events and deliveries dropped; get() -> RequestExpired); tombstones
        older than tombstone_ttl and idempotency keys older than 24 h are deleted.
        Returns the number of requests purged or dropped."""
        ...

    async def forget(self, request_id: str) -> None:
        """A finished request made a tombstone now, as the purge would at its result_ttl (input,
        metadata, result, error, events, deliveries and attempts dropped, in one transaction;
        get() -> RequestExpired, gone from list; the tombstone itself dropped after
        tombstone_ttl). Conflict unless terminal (cancel first); NotFound/RequestExpired as get()."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections."""
        ...
