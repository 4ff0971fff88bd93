"""Domain values, the one transition table and the one status document. No I/O.

Every backend checks `can_transition()` in Python *and* encodes the same table in its
`UPDATE ... WHERE status IN (...)` clauses, so a race can only lose, never corrupt.
The status document built by `to_document()` is what GET /v1/requests/{id} answers, what a
webhook carries and what the SDK parses: one shape, built in one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from errand.input_models import INPUT_TIMEOUT as INPUT_TIMEOUT
from errand.input_models import ON_TIMEOUT as ON_TIMEOUT
from errand.input_models import InputAsk as InputAsk
from errand.input_models import input_messages_from as input_messages_from
from errand.input_models import inputs_from as inputs_from
from errand.request_ids import public_id
from errand.result_models import ErrorInfo as ErrorInfo
from errand.result_models import Progress as Progress
from errand.result_models import Result as Result
from errand.scheduling_models import Limits as Limits
from errand.scheduling_models import QueueInfo as QueueInfo
from errand.scheduling_models import QueueStats as QueueStats
from errand.webhook_models import Delivery as Delivery
from errand.webhook_models import DeliveryAttempt as DeliveryAttempt
from errand.webhook_models import OutboxItem as OutboxItem

DEFAULT_USER_ID = "0"
"""The end user of a call without X-Muxi-User-Id; the SDK (user_id=None) and the CLI (no --user)
leave it to the server. A client key sees only its own user's requests."""
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 200
"""GET /v1/requests' default and largest `limit`: the server, OpenAPI, SDK and CLI read these."""


class Status(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    # queued -> picked up, or cancelled before it ran
    Status.PENDING: frozenset({Status.PROCESSING, Status.CANCELLED}),
    # processing -> processing is a new attempt (retry after backoff, or takeover after a lost
    # lease); a failed attempt never moves the status back to pending. Only an answered question
    # does (input_required -> pending): the handler is then run again from its start.
    Status.PROCESSING: frozenset(
        {Status.PROCESSING, Status.INPUT_REQUIRED, Status.COMPLETED, Status.FAILED, Status.CANCELLED}
    ),
    # waiting for a person (no worker, no lease): answered, expired (fail or cancel), cancelled
    Status.INPUT_REQUIRED: frozenset({Status.PENDING, Status.FAILED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def can_transition(old: Status, new: Status) -> bool:
    """The only judge of a legal status change."""
    return new in TRANSITIONS[old]


def sources_of(new: Status) -> tuple[Status, ...]:
    """States from which `new` may be entered (backends use it in WHERE clauses)."""
    return tuple(s for s in Status if new in TRANSITIONS[s])


class Kind(enum.StrEnum):
    """Where a request came from (`NewRequest.kind`): its origin, which priorities may key on."""

    CHAT = "chat"
    TRIGGER = "trigger"
    SCHEDULE = "schedule"  # a firing of a schedule (the scheduler or POST /v1/schedules/{id}/run)


class Mode(enum.StrEnum):
    AUTO = "auto"
    SYNC = "sync"
    ASYNC = "async"


# -- scheduling: priorities by origin, session policies, the limits a claim obeys ----------------
PRIORITY_SYNC, PRIORITY_AUTO, PRIORITY_ASYNC, PRIORITY_TRIGGER, PRIORITY_SCHEDULE = 1, 2, 3, 4, 5
"""Default priority by origin: a human waiting (sync) before auto, async, triggers, schedules."""
PRIORITY_BY_ORIGIN = {
    "sync": PRIORITY_SYNC,
    "auto": PRIORITY_AUTO,
    "async": PRIORITY_ASYNC,
    "trigger": PRIORITY_TRIGGER,
    "schedule": PRIORITY_SCHEDULE,
}
SESSION_POLICIES = ("enqueue", "reject", "interrupt")


@dataclass(frozen=True, slots=True)
class NewRequest:
    """Everything `Store.submit` needs to create a request. Built by the API."""

    id: str
    owner: str  # fingerprint of the API key that created it (never the key itself)
    user_id: str
    message: str
    kind: str = "chat"  # a Kind value: "chat" | "trigger" | "schedule"
    agent: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None
    webhook_url: str | None = None
    mode: Mode = Mode.ASYNC  # the decided mode: sync or async
    max_attempts: int = 3
    estimated_seconds: float | None = None
    trace_context: dict[str, str] | None = None
    """The W3C carrier (`traceparent`, `tracestate`) the worker and webhooks continue."""
    priority: int = PRIORITY_ASYNC
    """1 (first) .. 5; see PRIORITY_BY_ORIGIN. Within a fairness key, earlier sort keys run first."""
    fairness_key: str | None = None
    """Who this request takes its turn as (None: its owner and user, `default_fairness_key`)."""
    aging_seconds: float = 60.0
    """Wait that one priority level is worth: sort key = submit time + (priority-1) * this."""
    on_busy: str = "enqueue"
    """When its session has an unfinished request: enqueue | reject | interrupt (see SESSION_POLICIES)."""
    max_queued: int | None = None
    """limits.max_queued_per_user: the store refuses the submit (QueueFull) when the user already
    has this many pending, counted inside the insert's transaction (exact under concurrency)."""

    @property
    def turn_key(self) -> str:
        return self.fairness_key or default_fairness_key(self.owner, self.user_id)


def default_fairness_key(owner: str, user_id: str) -> str:
    """The fairness key of a request that names none: its owner and user."""
    return f"{owner}/{user_id}"


SUPERSEDED = "superseded"
"""The cancel reason of a request interrupted by a newer one of its session."""


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's idempotency key, scoped by owner + user + path, with a body fingerprint."""

    key: str
    scope: str  # owner fingerprint + user id + request path
    fingerprint: str  # sha256 of the canonical request body


@dataclass(frozen=True, slots=True)
class Request:
    """A request as stored. `seq` is the number of its latest event (a change counter)."""

    id: str
    owner: str
    user_id: str
    kind: str
    agent: str | None
    message: str
    session_id: str | None
    metadata: dict[str, Any]
    trigger: str | None
    webhook_url: str | None
    mode: Mode
    status: Status
    attempt: int  # fencing token: number of claims so far
    failures: int  # failed attempts so far (counted against max_attempts)
    max_attempts: int
    progress: Progress | None
    result: Result | None
    error: ErrorInfo | None
    created_at: float
    started_at: float | None
    completed_at: float | None
    run_at: float
    estimated_seconds: float | None
    seq: int
    expired: bool = False  # a tombstone: result and input purged after result_ttl
    priority: int = 3
    fairness_key: str = ""
    waiting_on: str | None = None  # "session": held until its session's running request ends
    trace_context: dict[str, str] | None = None  # W3C carrier stored at submit (tracing.py)
    input_request: InputAsk | None = None  # the outstanding question (status input_required)
    inputs: dict[str, Any] = field(default_factory=dict)  # answers so far, by input id, ask order
    input_messages: dict[str, str] = field(default_factory=dict)  # message id -> input id it answered
    input_state: Any = None  # what the agent kept for its resumption (an LLM's conversation)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return round((self.completed_at - self.started_at) * 1000)


class AttemptOutcome(enum.StrEnum):
    """How one attempt ended, as the attempt log records it."""

    RUNNING = "running"  # not ended yet
    COMPLETED = "completed"
    RETRIED = "retried"  # failed; the request runs again after its backoff
    FAILED = "failed"  # failed; the request failed with it
    CANCELLED = "cancelled"  # the request was cancelled while it ran
    INPUT_REQUIRED = "input_required"  # the handler asked for input; the request waits for it
    LEASE_LOST = "lease_lost"  # no lease renewal in time: taken back by requeue_expired
    WORKER_LOST = "worker_lost"  # its worker was seen dead: taken back by requeue_dead


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a request: who ran it, when, how it ended, and why it failed."""

    request_id: str
    attempt: int
    worker_id: str
    started_at: float
    ended_at: float | None
    outcome: AttemptOutcome
    error: ErrorInfo | None  # with its traceback, if an exception ended the attempt

    @property
    def duration_ms(self) -> int | None:
        return None if self.ended_at is None else round((self.ended_at - self.started_at) * 1000)


@dataclass(frozen=True, slots=True)
class Claim:
    """A request handed to a worker. `attempt` is the fencing token every write must carry."""

    request: Request
    attempt: int


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a request's ordered event log (status, progress, content, terminal)."""

    request_id: str
    seq: int
    type: str  # created | started | progress | content | retry | input_required | input_received | terminal
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class Page:
    requests: list[Request]
    next_cursor: str | None


def to_document(
    req: Request, *, with_delivery: bool = False, delivery: Delivery | None = None, stored_id: bool = False
) -> dict[str, Any]:
    """The status document: GET /v1/requests/{id}, the webhook body, the SDK's input.

    `delivery` is the plain mode string "polling"|"webhook" by default: that is the form frozen
    into terminal events and webhook bodies when the request ends, where a delivery state would
    already be stale. `with_delivery=True` (what GET /v1/requests/{id} answers) makes it an
    object: `{"mode": "polling"}`, or for a webhook request `{"mode": "webhook", "state",
    "attempts", "last_status_code", "next_attempt_at"}` from `delivery`, its latest delivery
    (None: the request has not ended, so nothing is due yet, which reads as pending).
    `request_id` is the id its owner knows it by (`request_ids.public_id`); `stored_id=True`
    (an admin's view, where owners' chosen ids may coincide) shows the stored one."""
    mode = "webhook" if req.webhook_url else "polling"
    doc: dict[str, Any] = {
        "request_id": req.id if stored_id else public_id(req.id),
        "status": req.status.value,
        "user_id": req.user_id,
        "kind": req.kind,
        "agent": req.agent,
        "progress": shown_progress(req.status, req.progress),
        "attempts": req.attempt,
        "created_at": req.created_at,
        "started_at": req.started_at,
        "completed_at": req.completed_at,
        "duration_ms": req.duration_ms,
        "delivery": _delivery_state(mode, delivery) if with_delivery else mode,
    }
    if req.session_id is not None:
        doc["session_id"] = req.session_id
    if req.trigger is not None:
        doc["trigger"] = req.trigger
    if req.status is Status.INPUT_REQUIRED and req.input_request is not None:
        doc["input_request"] = req.input_request.public()
    if req.status is Status.COMPLETED and req.result is not None:
        doc["result"] = req.result.to_dict()
    if req.status is Status.FAILED and req.error is not None:
        doc["error"] = error_document(req.error)
    if req.status is Status.CANCELLED and req.error is not None and req.error.type in _CANCEL_REASONS:
        doc["cancel_reason"] = _CANCEL_REASONS[req.error.type]
    return doc


_CANCEL_REASONS = {SUPERSEDED: SUPERSEDED, INPUT_TIMEOUT: "input_timeout"}
"""The error type of a cancelled request -> the `cancel_reason` its document shows."""
FAILED_ERROR_CODE = "processing_failed"
"""`error.code` of a failed request (MUXI's), beside errand's own type, message, retryable."""


def error_document(error: ErrorInfo) -> dict[str, Any]:
    """A failed request's `error`, one shape in GET, lists, `failed` events and webhook bodies."""
    return {"code": FAILED_ERROR_CODE, **error.to_dict()}


def shown_progress(status: Status, progress: Progress | None) -> dict[str, Any] | None:
    """What a reader sees: a completed request reads 100 % (step = total_steps) whatever its
    handler last reported; any other, its last report."""
    if progress is None:
        return None
    if status is Status.COMPLETED:
        step = progress.total_steps if progress.total_steps is not None else progress.step
        progress = Progress(100.0, progress.message, step, progress.total_steps)
    return progress.to_dict()


def _delivery_state(mode: str, delivery: Delivery | None) -> dict[str, Any]:
    if mode == "polling":
        return {"mode": mode}
    attempts = delivery.attempts if delivery is not None else []
    return {
        "mode": mode,
        "state": delivery.state if delivery is not None else "pending",
        "attempts": len(attempts),
        "last_status_code": attempts[-1].status_code if attempts else None,
        "next_attempt_at": delivery.next_attempt_at if delivery is not None else None,
    }
