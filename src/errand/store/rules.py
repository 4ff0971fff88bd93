"""The rules both store backends share: limits, rows -> models, liveness, the checks before a
state change and the delivery state machine. Pure: no I/O.
The list query with its cursor is `store.listing`.

SQLite runs each operation as a plain function on its one writer thread; PostgreSQL runs async
statements, several operations per batch. They share no control flow, only these rules, so a
promise of `store.base` (what a tombstone answers, when a cancel conflicts, when a lost worker's
request fails, what a 2xx does to a delivery, how a page ends) is written once, here.

Rows are read by position: every query that returns a request selects `REQUEST_COLUMNS` first,
in that order (likewise the other column lists). SQLite keeps JSON as text, PostgreSQL as jsonb
that the driver already decodes: the `json` argument turns a stored JSON value into Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from errand.errors import Conflict, IdempotencyMismatch, InvalidRequest, LeaseLost, NotFound, RequestExpired
from errand.models import (
    TERMINAL,
    Delivery,
    DeliveryAttempt,
    ErrorInfo,
    Event,
    IdempotencyKey,
    InputAsk,
    Mode,
    OutboxItem,
    Progress,
    Request,
    Result,
    Status,
    can_transition,
    input_messages_from,
    inputs_from,
    sources_of,
)
from errand.request_ids import public_id

IDEMPOTENCY_TTL = 24 * 3600.0
"""Seconds an idempotency key is kept (`store.base.Store.submit`)."""
CREATED = {"status": Status.PENDING.value}
"""Data of every `created` event."""
PROBE_LOCK_WAIT = 2.0
"""Seconds `probe_write` waits for a lock, so `/ready` answers before a load balancer gives up."""


# -- SQL both dialects share ------------------------------------------------------------------------
def sql_in(statuses: Sequence[Status]) -> str:
    """`('pending', 'processing')`: a status set rendered as literals for a WHERE clause."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


# The same text as the predicates of the partial indexes `requests_runnable` and `deliveries_due`
# in both schemas, so that each planner uses them.
_RUNNABLE_STATUSES = sql_in(sources_of(Status.PROCESSING))
_UNSENT = "state IN ('pending', 'retrying')"


def claimable(now: str, status: str = "status") -> str:
    """Requests `claim` may take: pending, or processing between attempts, due at `now` (a
    placeholder), and not held behind an earlier request of their session. `status` is how the
    column is written: SQLite's claim of rows named by id writes `+status`, so that its planner
    (which has no statistics) looks them up by id instead of walking `requests_by_status`."""
    runnable = f"lease_owner IS NULL AND {status} IN {_RUNNABLE_STATUSES}"
    return f"{runnable} AND run_at <= {now} AND waiting_on IS NULL"


def lease_expired(now: str) -> str:
    """Requests whose running attempt's lease ran out by `now`: their worker is lost."""
    return f"lease_owner IS NOT NULL AND lease_expires_at <= {now} AND status = '{Status.PROCESSING.value}'"


def outbox_claimable(now: str) -> str:
    """Deliveries `claim_outbox` may take: unsent, due, and not leased by a live dispatcher."""
    return f"{_UNSENT} AND next_attempt_at <= {now} AND (lease_owner IS NULL OR lease_expires_at <= {now})"


def held(attempt: str, alias: str = "") -> str:
    """The fencing guard of every write of a running attempt: the attempt number (`attempt`, a
    placeholder or column) still matches and a lease is out. A released or requeued attempt
    has no lease, so a worker that lost its request writes nothing."""
    a = f"{alias}." if alias else ""
    return (
        f"{a}attempt = {attempt} AND {a}lease_owner IS NOT NULL AND {a}status = '{Status.PROCESSING.value}'"
    )


# -- rows -> models ---------------------------------------------------------------------------------
REQUEST_COLUMNS = (
    "id, owner, user_id, kind, agent, message, session_id, metadata, trigger_name, webhook_url, mode, "
    "status, attempt, failures, max_attempts, progress, result, error, created_at, started_at, "
    "completed_at, run_at, estimated_seconds, seq, expired_at, priority, fairness_key, waiting_on, "
    "trace_context, input_request, inputs, input_state"
)
EVENT_COLUMNS = "request_id, seq, type, data, at"
DELIVERY_COLUMNS = "id, request_id, url, state, next_attempt_at, created_at"
ATTEMPT_COLUMNS = "delivery_id, attempt, at, status_code, error, duration_ms"
OUTBOX_COLUMNS = "id, request_id, url, body, attempts, next_attempt_at"


class Values(Protocol):
    """A result row read by position: a sqlite3 tuple, an asyncpg Record."""

    def __getitem__(self, index: int, /) -> Any: ...


Json = Callable[[Any], Any]


def _decoded(value: Any) -> Any:
    return value


def qualified(columns: str, alias: str) -> str:
    """`r.id, r.owner, ...`: a column list for a query that names its tables."""
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


def summary_columns(alias: str = "") -> str:
    """REQUEST_COLUMNS as `list` selects them: the result (and input_state) is never read (a page of
    20 MB results was read whole only to be sent on; a list item is a summary, fetch the
    request for its result). NULL holds its place, so rows still read by position."""
    prefix = f"{alias}." if alias else ""
    columns = (c.strip() for c in REQUEST_COLUMNS.split(","))
    return ", ".join(f"NULL AS {c}" if c in _NOT_SUMMARIZED else f"{prefix}{c}" for c in columns)


_NOT_SUMMARIZED = ("result", "input_state")
"""Columns a list item leaves out (NULL): the result, and an LLM's kept conversation."""


def to_request(row: Values, json: Json = _decoded) -> Request:
    """A row whose first values are REQUEST_COLUMNS."""
    return Request(
        id=row[0],
        owner=row[1],
        user_id=row[2],
        kind=row[3],
        agent=row[4],
        message=row[5],
        session_id=row[6],
        metadata=json(row[7]) or {},
        trigger=row[8],
        webhook_url=row[9],
        mode=Mode(row[10]),
        status=Status(row[11]),
        attempt=row[12],
        failures=row[13],
        max_attempts=row[14],
        progress=Progress.from_dict(json(row[15])),
        result=Result.from_dict(json(row[16])),
        error=ErrorInfo.from_dict(json(row[17])),
        created_at=row[18],
        started_at=row[19],
        completed_at=row[20],
        run_at=row[21],
        estimated_seconds=row[22],
        seq=row[23],
        expired=row[24] is not None,
        priority=row[25],
        fairness_key=row[26],
        waiting_on=row[27],
        trace_context=json(row[28]),
        input_request=InputAsk.from_dict(json(row[29])),
        inputs=inputs_from(json(row[30])),
        input_messages=input_messages_from(json(row[30])),
        input_state=json(row[31]),
    )


def to_event(row: Values, json: Json = _decoded) -> Event:
    """A row selected with EVENT_COLUMNS."""
    return Event(request_id=row[0], seq=row[1], type=row[2], data=json(row[3]), at=row[4])


def to_attempt(row: Values) -> DeliveryAttempt:
    """A row selected with ATTEMPT_COLUMNS."""
    return DeliveryAttempt(
        delivery_id=row[0], attempt=row[1], at=row[2], status_code=row[3], error=row[4], duration_ms=row[5]
    )


def to_delivery(row: Values, attempts: list[DeliveryAttempt]) -> Delivery:
    """A row selected with DELIVERY_COLUMNS, with its attempts."""
    return Delivery(
        id=row[0],
        request_id=row[1],
        url=row[2],
        state=row[3],
        attempts=attempts,
        next_attempt_at=row[4],
        created_at=row[5],
    )


def to_outbox(rows: Sequence[Values], json: Json = _decoded) -> list[OutboxItem]:
    """Rows selected with OUTBOX_COLUMNS and then their insertion position, oldest due first
    (an UPDATE ... RETURNING gives no order of its own)."""
    ordered = sorted(rows, key=lambda r: (r[5], r[6]))
    return [OutboxItem(id=r[0], request_id=r[1], url=r[2], body=json(r[3]), attempt=r[4]) for r in ordered]


# -- liveness and lost races -----------------------------------------------------------------------
def not_found(request_id: str) -> NotFound:
    return NotFound(f"request {request_id!r} not found")


def live(request_id: str, req: Request | None, cutoff: float | None = None) -> Request:
    """The live request: NotFound if there is none, RequestExpired if it is a tombstone or
    outlived its result_ttl (`cutoff`, see `result_cutoff`) and the purge has not come yet."""
    if req is None:
        raise not_found(request_id)
    if req.expired or outlived(req, cutoff):
        raise RequestExpired(
            f"request {public_id(request_id)!r} has expired", owner=req.owner, user_id=req.user_id
        )
    return req


# -- result expiry: one rule for reads and for the purge --------------------------------------------
def result_cutoff(now: float, result_ttl: float | None) -> float | None:
    """Finished requests completed at or before this have outlived result_ttl: every read treats
    them as tombstones from that moment, and the next purge makes them so (None: no ttl)."""
    return None if result_ttl is None else now - result_ttl


def outlived(req: Request, cutoff: float | None) -> bool:
    """`req` is finished and completed at or before `cutoff` (the rule OUTLIVED states in SQL)."""
    return (
        cutoff is not None and req.is_terminal and req.completed_at is not None and req.completed_at <= cutoff
    )


def outlived_sql(cutoff: str, alias: str = "") -> str:
    """The rows `outlived` is true of, for a WHERE clause: `cutoff` is a placeholder. Never
    NULL, so NOT (...) selects exactly the others."""
    a = f"{alias}." if alias else ""
    return (
        f"({a}completed_at IS NOT NULL AND {a}completed_at <= {cutoff} "
        f"AND {a}status IN {sql_in(sorted(TERMINAL))})"
    )


def already_exists(request_id: str) -> Conflict:
    """A submit whose request id is taken."""
    shown = public_id(request_id)
    return Conflict(f"request {shown!r} already exists", details={"request_id": shown})


def unstorable(exc: Exception) -> InvalidRequest:
    """A value the JSON encoder refused (nesting past its limit, a lone surrogate, a type JSON
    lacks). orjson's reason names no part of the value, so it may be shown; the value is not."""
    reason = str(exc) if isinstance(exc, orjson.JSONEncodeError) else type(exc).__name__
    return InvalidRequest(f"value cannot be stored as JSON: {reason}")


def lease_lost(request_id: str, attempt: int) -> LeaseLost:
    """A write of an attempt that no longer holds its request (see `held`)."""
    return LeaseLost(details={"request_id": request_id, "attempt": attempt})


def delivery_not_found(delivery_id: str) -> NotFound:
    return NotFound(f"delivery {delivery_id!r} not found")


# -- idempotency -----------------------------------------------------------------------------------
def key_cutoff(now: float) -> float:
    """Keys created at or before this have outlived IDEMPOTENCY_TTL: free again, and purged."""
    return now - IDEMPOTENCY_TTL


def check_fingerprint(idem: IdempotencyKey, fingerprint: str, request_id: str) -> None:
    """IdempotencyMismatch when the stored key was used with another body."""
    if fingerprint != idem.fingerprint:
        raise IdempotencyMismatch(details={"idempotency_key": idem.key, "request_id": request_id})


# -- state changes ---------------------------------------------------------------------------------
def check_finish_status(status: Status) -> None:
    """`finish` ends a running attempt in a terminal status, nothing else."""
    if not (status.is_terminal and can_transition(Status.PROCESSING, status)):
        raise InvalidRequest(f"finish needs a terminal status, not {status.value!r}")


def webhook_settable(req: Request) -> None:
    """Conflict once the request has ended: its webhook delivery (or none) is already decided."""
    if req.is_terminal:
        raise Conflict(
            f"request {public_id(req.id)!r} is already {req.status.value}: its webhook cannot change",
            details={"request_id": public_id(req.id), "status": req.status.value},
        )


def forgettable(req: Request) -> Request:
    """A request `forget` may tombstone: a finished one (an unfinished one is cancelled first)."""
    if not req.is_terminal:
        raise Conflict(
            f"request {public_id(req.id)!r} is {req.status.value}; cancel it before deleting it",
            details={"status": req.status.value},
        )
    return req


def needs_cancel(req: Request) -> bool:
    """False when the request is already cancelled (returned unchanged); Conflict when it ended
    otherwise; True when it is to be cancelled now."""
    if req.status is Status.CANCELLED:
        return False
    if not can_transition(req.status, Status.CANCELLED):
        raise Conflict(
            f"request {req.id!r} is already {req.status.value}",
            details={"request_id": req.id, "status": req.status.value},
        )
    return True


def cancel_mode(lease_held: bool) -> str:
    """ "cooperative" when a worker held a lease (it stops the attempt itself), else "immediate"."""
    return "cooperative" if lease_held else "immediate"


def cancel_lost(request_id: str) -> Conflict:
    """The guarded cancel UPDATE found the row changed (unreachable with the row held; kept so a
    race can only lose)."""
    return Conflict(f"request {request_id!r} changed while cancelling")


def retry_data(attempt: int, run_at: float, error: ErrorInfo) -> dict[str, Any]:
    """Data of a `retry` event (the request stays processing)."""
    return {"status": Status.PROCESSING.value, "attempt": attempt, "run_at": run_at, "error": error.to_dict()}


def attempts_spent(failures: int, max_attempts: int) -> bool:
    """True when one more failure uses up the request's attempts: it fails instead of retrying."""
    return failures + 1 >= max_attempts


LEASE_EXPIRED = "lease expired"
WORKER_DIED = "its worker died"
"""The causes of a lost attempt: no renewal within the lease, or the worker known dead (its
process gone, or its database session ended: `requeue_dead`)."""


def worker_lost(attempt: int, *, spent: bool, cause: str = LEASE_EXPIRED) -> ErrorInfo:
    """The error of an attempt whose worker was lost; retryable unless spent."""
    return ErrorInfo("WorkerLost", f"Worker lost: {cause} during attempt {attempt}", retryable=not spent)


def redelivery_url(req: Request) -> str:
    """The webhook URL to deliver the request's document to again; Conflict if it is not
    terminal or has none."""
    if not req.is_terminal:
        raise Conflict(f"request {req.id!r} is {req.status.value}: nothing to deliver yet")
    if not req.webhook_url:
        raise Conflict(f"request {req.id!r} has no webhook URL")
    return req.webhook_url


def next_delivery_state(
    state: str, status_code: int | None, next_attempt_at: float | None
) -> tuple[str, float | None]:
    """(state, next attempt) after one attempt. A 2xx delivers; else retry at next_attempt_at,
    or fail without one. A late failure report never undoes a success."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered", None
    if state == "delivered":
        return state, None
    if next_attempt_at is None:
        return "failed", None
    return "retrying", next_attempt_at
