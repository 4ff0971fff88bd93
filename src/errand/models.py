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

from errand.request_ids import public_id


class Status(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
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
    # lease); the status never moves back to pending, so readers never see work "un-start".
    Status.PROCESSING: frozenset({Status.PROCESSING, Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
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


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float | None = None
    message: str | None = None
    step: int | None = None
    total_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "message": self.message,
            "step": self.step,
            "total_steps": self.total_steps,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Progress | None:
        if not d:
            return None
        return cls(d.get("percent"), d.get("message"), d.get("step"), d.get("total_steps"))


@dataclass(frozen=True, slots=True)
class Result:
    """What an agent produced. `extra` holds anything else the agent returned (usage, data)."""

    text: str
    agent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "text": self.text, "agent": self.agent}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Result | None:
        if d is None:
            return None
        extra = {k: v for k, v in d.items() if k not in ("text", "agent")}
        return cls(str(d.get("text", "")), d.get("agent"), extra)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str
    message: str
    retryable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "retryable": self.retryable}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ErrorInfo | None:
        if d is None:
            return None
        return cls(str(d.get("type", "Error")), str(d.get("message", "")), bool(d.get("retryable")))


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

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return round((self.completed_at - self.started_at) * 1000)


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
    type: str  # created | started | progress | content | retry | completed | failed | cancelled
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class Page:
    requests: list[Request]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A webhook delivery due to be sent: the body is fixed when the request ends."""

    id: str  # stable per delivery: the `webhook-id` receivers dedupe on
    request_id: str
    url: str
    body: dict[str, Any]
    attempt: int  # attempts made so far (0 before the first); the dispatcher owns the limit


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """State of a request's webhook delivery: pending | retrying | delivered | failed."""

    id: str
    request_id: str
    url: str
    state: str
    attempts: list[DeliveryAttempt]
    next_attempt_at: float | None
    created_at: float


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
        "progress": req.progress.to_dict() if req.progress else None,
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
    if req.status is Status.COMPLETED and req.result is not None:
        doc["result"] = req.result.to_dict()
    if req.status is Status.FAILED and req.error is not None:
        doc["error"] = req.error.to_dict()
    return doc


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


class Overlap(enum.StrEnum):
    """What a schedule does at a fire time while its previous firing has not ended."""

    SKIP = "skip"  # no firing this time
    ENQUEUE = "enqueue"  # fire anyway: the new one queues beside the old
    CANCEL_PREVIOUS = "cancel_previous"  # cancel the old one, then fire


class CatchUp(enum.StrEnum):
    """What a schedule does with fire times missed while no scheduler ran."""

    SKIP = "skip"  # fire only at the next future time
    ONE = "one"  # one catch-up firing now for all the missed ones, then the next future time


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored: when (cron in a timezone, or every N seconds), what (a trigger with
    data, or an agent with a message), and its state (next fire time, consecutive failures).

    `source` is "api" (made over HTTP) or "file" (a trigger's `schedule:` front matter)."""

    id: str
    name: str
    source: str
    cron: str | None
    every_seconds: float | None
    timezone: str
    trigger: str | None
    data: dict[str, Any]
    agent: str | None
    message: str | None
    user_id: str
    overlap: Overlap
    catch_up: CatchUp
    enabled: bool
    max_failures: int
    consecutive_failures: int = 0
    next_fire_at: float | None = None
    last_fired_at: float | None = None
    last_request_id: str | None = None
    counted_request_id: str | None = None  # the last firing whose outcome was counted
    created_at: float = 0.0
    updated_at: float = 0.0


SCHEDULE_OWNER = "errand-scheduler"
"""The `owner` of every schedule firing (no client key made it): admins see them all."""


def firing_id(schedule_id: str, fire_at: float, *, run_now: bool = False) -> str:
    """The request id of a schedule's firing at `fire_at`: unique per schedule and fire time (ms),
    so the requests primary key refuses a second firing of one time. "Run now" firings are
    marked apart, so one never takes a timetable time's id."""
    return f"sched:{schedule_id}:{'run:' if run_now else ''}{round(fire_at * 1000)}"


@dataclass(frozen=True, slots=True)
class Firing:
    """One fire time of a schedule, as the scheduler asks `Store.fire_schedule` for it.

    `due_at` is the next_fire_at the scheduler read (None: "run now", outside the timetable);
    the store fires only if the row still has it, so one fire time fires once. `request` is
    what to submit; None with `build_error` when it could not be built (a failed firing), None
    without when this time is passed over (missed while down, `catch_up: skip`)."""

    schedule_id: str
    due_at: float | None
    next_fire_at: float | None
    request: NewRequest | None
    build_error: str | None = None


@dataclass(frozen=True, slots=True)
class FireOutcome:
    """What `Store.fire_schedule` did: `fired` (request set), `skipped` (overlap: the previous
    firing is still running), `disabled` (max_failures reached), or `lost` (another scheduler
    fired this time, or the schedule changed or went away meanwhile)."""

    outcome: str
    schedule: Schedule | None
    request: Request | None = None
    cancelled: str | None = None  # the previous firing cancelled by `cancel_previous`
