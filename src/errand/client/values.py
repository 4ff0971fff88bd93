"""The SDK's values: request status, handle and page parsed from errand's JSON, and the
optional keywords of chat/trigger calls. No I/O; `errand.client` re-exports them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict, TypeVar
from urllib.parse import quote

from errand.models import ErrorInfo, InputAsk, Progress, Result, Status

__all__ = [
    "AgentInfo",
    "AttemptInfo",
    "CancelResult",
    "ChatOptions",
    "DeliveryAttempt",
    "DeliveryInfo",
    "RequestHandle",
    "RequestList",
    "RequestStatus",
    "TriggerOptions",
]


T = TypeVar("T")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _raw(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of the document as the server sent it (each value's `raw`)."""
    return MappingProxyType(dict(doc))


def _each(parse: Callable[[Any], T], items: Any) -> tuple[T, ...]:
    """Every item of a JSON array parsed (a missing or null array: none)."""
    return tuple(parse(item) for item in items or ())


def _delivery_mode(value: Any) -> str | None:
    """`delivery` is a mode string in 202s, lists and webhook bodies, an object in GET answers."""
    if isinstance(value, Mapping):
        value = value.get("mode")
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """A request as GET /v1/requests/{id} describes it (also a webhook body, or a sync answer).

    A sync `chat()` whose work outlived the server's sync wait comes back as a 202; it is still a
    RequestStatus, with `status` pending or processing and no result: `wait(st.id)` for the rest.
    """

    id: str
    status: Status
    result: Result | None = None
    error: ErrorInfo | None = None
    progress: Progress | None = None
    attempts: int = 0
    created_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    duration_ms: int | None = None
    agent: str | None = None
    user_id: str | None = None
    kind: str | None = None
    delivery: str | None = None
    """How the result is delivered: "polling" or "webhook" (GET also sends the webhook's state,
    `raw["delivery"]["state"]`: pending, retrying, delivered or failed)."""
    input_request: InputAsk | None = None
    """The question the request waits on (status input_required): `.id`, `.prompt`, `.schema`,
    `.expires_at`. Answer it with `respond()`."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The document as the server sent it (read-only), for fields this class does not name."""

    @property
    def is_complete(self) -> bool:
        """True once the request is terminal (completed, failed or cancelled): it will not change."""
        return self.status.is_terminal

    @property
    def needs_input(self) -> bool:
        """True while the request waits for an answer (input_required): it cannot end until
        someone calls `respond()` (or its question expires). `wait()` returns then too."""
        return self.status is Status.INPUT_REQUIRED

    @property
    def is_success(self) -> bool:
        return self.status is Status.COMPLETED

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RequestStatus:
        """Parse a status document (GET answer, sync chat answer, webhook body)."""
        return cls(
            id=str(doc.get("request_id") or doc.get("id") or ""),
            status=Status(doc.get("status", "pending")),
            result=Result.from_dict(doc.get("result")),
            error=ErrorInfo.from_dict(doc.get("error")),
            progress=Progress.from_dict(doc.get("progress")),
            attempts=int(doc.get("attempts") or 0),
            created_at=_opt_float(doc.get("created_at")),
            started_at=_opt_float(doc.get("started_at")),
            completed_at=_opt_float(doc.get("completed_at")),
            duration_ms=_opt_int(doc.get("duration_ms")),
            agent=doc.get("agent"),
            user_id=doc.get("user_id"),
            kind=doc.get("kind"),
            delivery=_delivery_mode(doc.get("delivery")),
            input_request=InputAsk.from_dict(doc.get("input_request")),
            raw=_raw(doc),
        )


@dataclass(frozen=True, slots=True)
class RequestHandle:
    """What an accepted async request (202) gives back: enough to poll or wait for it."""

    id: str
    status: Status
    poll_url: str
    estimated_seconds: float | None = None
    delivery: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RequestHandle:
        """Parse a 202 body; a full status document (e.g. an idempotent replay) also works."""
        rid = str(doc.get("request_id") or doc.get("id") or "")
        return cls(
            id=rid,
            status=Status(doc.get("status", "pending")),
            poll_url=str(doc.get("poll_url") or f"/v1/requests/{quote(rid, safe='')}"),
            estimated_seconds=_opt_float(doc.get("estimated_seconds")),
            delivery=doc.get("delivery"),
            raw=_raw(doc),
        )


@dataclass(frozen=True, slots=True)
class RequestList:
    """One page of the caller's requests, newest first; pass `next_cursor` for the next page."""

    requests: tuple[RequestStatus, ...]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[RequestStatus]:
        return iter(self.requests)

    def __len__(self) -> int:
        return len(self.requests)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RequestList:
        return cls(_each(RequestStatus.from_document, doc.get("requests")), doc.get("next_cursor"))


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One attempt of a request, as GET /v1/requests/{id}/attempts describes it.

    `outcome`: running, completed, retried, failed, cancelled, lease_lost or worker_lost.
    `error` has the type and message of what ended it; `traceback` is sent to an admin key only
    (None otherwise, and for an attempt that raised nothing)."""

    attempt: int
    outcome: str
    worker_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    duration_ms: int | None = None
    error: ErrorInfo | None = None
    traceback: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AttemptInfo:
        return cls(
            attempt=int(doc.get("attempt") or 0),
            outcome=str(doc.get("outcome") or ""),
            worker_id=doc.get("worker_id"),
            started_at=_opt_float(doc.get("started_at")),
            ended_at=_opt_float(doc.get("ended_at")),
            duration_ms=_opt_int(doc.get("duration_ms")),
            error=ErrorInfo.from_dict(doc.get("error")),
            traceback=_opt_str(doc.get("traceback")),
            raw=_raw(doc),
        )

    @classmethod
    def many(cls, doc: Mapping[str, Any]) -> tuple[AttemptInfo, ...]:
        """The `attempts` of a GET /v1/requests/{id}/attempts answer, oldest first."""
        return _each(cls.from_document, doc.get("attempts"))


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What DELETE /v1/requests/{id} answers: the request is cancelled (no result can be recorded
    after this). `cancellation` says what happened to its work: "immediate" -- nothing was
    running (pending, waiting for a retry, or already cancelled); "cooperative" -- a worker was
    running an attempt and stops it at its next await or `ctx.checkpoint()`."""

    request_id: str
    status: Status
    cancellation: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> CancelResult:
        return cls(
            request_id=str(doc.get("request_id") or ""),
            status=Status(doc.get("status", "cancelled")),
            cancellation=_opt_str(doc.get("cancellation")),
            raw=_raw(doc),
        )


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST of a webhook: its HTTP status (None if none came back), error and duration."""

    attempt: int
    at: float | None = None
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> DeliveryAttempt:
        return cls(
            attempt=int(doc.get("attempt") or 0),
            at=_opt_float(doc.get("at")),
            status_code=_opt_int(doc.get("status_code")),
            error=_opt_str(doc.get("error")),
            duration_ms=_opt_int(doc.get("duration_ms")),
        )


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """One webhook delivery of a request (the first, or a redelivery) with every attempt.

    `webhook_id` is the `webhook-id` header each attempt carries (receivers dedupe on it);
    `state`: pending, retrying, delivered or failed."""

    webhook_id: str
    url: str
    state: str
    created_at: float | None = None
    next_attempt_at: float | None = None
    attempts: tuple[DeliveryAttempt, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> DeliveryInfo:
        return cls(
            webhook_id=str(doc.get("webhook_id") or ""),
            url=str(doc.get("url") or ""),
            state=str(doc.get("state") or ""),
            created_at=_opt_float(doc.get("created_at")),
            next_attempt_at=_opt_float(doc.get("next_attempt_at")),
            attempts=_each(DeliveryAttempt.from_document, doc.get("attempts")),
            raw=_raw(doc),
        )

    @classmethod
    def many(cls, doc: Mapping[str, Any]) -> tuple[DeliveryInfo, ...]:
        """The `deliveries` of a GET /v1/requests/{id}/deliveries answer, oldest first."""
        return _each(cls.from_document, doc.get("deliveries"))


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """One agent of the formation, as GET /v1/agents describes it. `kind`: handler, process or
    llm; `expected_seconds`: the p90 of its recent runs (None until it has a few)."""

    id: str
    description: str | None = None
    default: bool = False
    kind: str | None = None
    tools: tuple[str, ...] = ()
    expected_seconds: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AgentInfo:
        return cls(
            id=str(doc.get("id") or ""),
            description=_opt_str(doc.get("description")),
            default=bool(doc.get("default")),
            kind=doc.get("kind"),
            tools=_each(str, doc.get("tools")),
            expected_seconds=_opt_float(doc.get("expected_seconds")),
            raw=_raw(doc),
        )

    @classmethod
    def many(cls, doc: Mapping[str, Any]) -> tuple[AgentInfo, ...]:
        """The `agents` of a GET /v1/agents answer, in configuration order."""
        return _each(cls.from_document, doc.get("agents"))


class TriggerOptions(TypedDict, total=False):
    """Optional keywords of `fire_trigger()`."""

    session_id: str | None
    webhook_url: str | None
    idempotency_key: str | None
    """Sent as X-Muxi-Idempotency-Key: a retry with the same key returns the original request."""


class ChatOptions(TriggerOptions, total=False):
    """Optional keywords of `chat()` and `chat_async()` (the POST /v1/chat body fields)."""

    agent_id: str | None
    metadata: Mapping[str, Any] | None
    threshold_seconds: float | None
    request_id: str | None
    """A client-chosen id, unique per owner (else the server makes `req_...`)."""
