"""The response bodies of the HTTP API as pydantic models: what /openapi.json documents.

Handlers build their answers as plain dicts on the hot path (`models.to_document`, orjson); these
models are the schema those dicts must fit. The OpenAPI document is generated from them
(api/openapi.py), and tests validate real answers against them -- every status document
`to_document` can build, and every answer schemathesis provokes from a live server -- so the
document cannot drift from what the server sends. `extra="forbid"`: a field added to an answer
but not here fails those tests instead of going undocumented.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from errand.api.agent_schemas import AgentDocument as AgentDocument
from errand.api.agent_schemas import AgentList as AgentList
from errand.api.openai_schemas import OpenAIErrorBody as OpenAIErrorBody
from errand.api.openai_schemas import OutputMessage as OutputMessage
from errand.api.openai_schemas import OutputText as OutputText
from errand.api.openai_schemas import ResponseDeleted as ResponseDeleted
from errand.api.openai_schemas import ResponseObject as ResponseObject
from errand.api.schedule_schemas import ScheduleDeleted as ScheduleDeleted
from errand.api.schedule_schemas import ScheduleDocument as ScheduleDocument
from errand.api.schedule_schemas import ScheduleList as ScheduleList
from errand.models import Status

__all__ = [
    "Accepted",
    "AgentDocument",
    "AgentList",
    "CancelAnswer",
    "DeliveryList",
    "ErrorBody",
    "Health",
    "JsonRpcAnswer",
    "JsonRpcCall",
    "OpenAIErrorBody",
    "Ready",
    "Redelivery",
    "RequestInput",
    "RequestList",
    "ResponseDeleted",
    "ResponseObject",
    "ScheduleDeleted",
    "ScheduleDocument",
    "ScheduleList",
    "StatusDocument",
    "TriggerDocument",
    "TriggerList",
    "WebhookSecret",
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Doc):
    code: str = Field(description="Stable machine-readable code, e.g. INVALID_REQUEST, REQUEST_NOT_FOUND.")
    message: str = Field(description="What went wrong, for a human.")
    details: Any = Field(default=None, description="Structured detail (e.g. the field), or null.")


class ErrorBody(_Doc):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": {"code": "REQUEST_NOT_FOUND", "message": "Request not found", "details": None}}
            ]
        }
    )

    error: ErrorDetail


class ProgressDocument(_Doc):
    percent: float | None = None
    message: str | None = None
    step: int | None = None
    total_steps: int | None = None


class ResultDocument(BaseModel):
    """What the agent produced: `text`, the agent id, and whatever else it returned (usage...)."""

    model_config = ConfigDict(extra="allow")

    text: str
    agent: str | None = None


class ErrorInfoDocument(_Doc):
    """A failed request's `error` (models.error_document): the same in GET, lists, the `failed`
    event and the webhook body."""

    code: Literal["processing_failed"] = Field(description="Always processing_failed (MUXI's code).")
    type: str = Field(description="The error's class name, e.g. ValueError or TaskTimeout.")
    message: str
    retryable: bool


class InputRequestDocument(_Doc):
    """The question a request in `input_required` waits on; answer it with POST .../input."""

    id: str = Field(description="The input id an answer names.")
    prompt: str
    schema_: dict[str, Any] | None = Field(
        default=None, alias="schema", description="A JSON Schema the answer must satisfy, or null."
    )
    expires_at: float | None = Field(
        description="Unix time after which it ends by its on_timeout; null: never."
    )


class DeliveryState(_Doc):
    """GET /v1/requests/{id}: how the result reaches the client, and for a webhook, how far."""

    mode: Literal["polling", "webhook"]
    state: Literal["pending", "retrying", "delivered", "failed"] | None = None
    attempts: int | None = None
    last_status_code: int | None = None
    next_attempt_at: float | None = None


class RequestInput(_Doc):
    """What was submitted, as stored (GET /v1/requests/{id} only; api/requests.input_document).

    Bounded: the message came in a body of at most `server.max_body_bytes` (default 256 KiB; a
    larger one answered 413), so this is never larger than what the caller sent. A purged
    request (past `async.result_ttl`) has no input: it answers 410."""

    message: str = Field(description="What the agent runs on (a trigger's: rendered from its template).")
    metadata: dict[str, Any] = Field(description="As submitted ({} when none; a schedule's: schedule_id).")
    session_id: str | None
    trigger: str | None = Field(description="The trigger it was fired through, if any.")
    priority: int = Field(description="1 (first) .. 5: the one given, else its origin's default.")
    fairness_key: str | None = Field(description="The one given; null: the default, its owner and user.")
    mode: Literal["sync", "async"] = Field(description="The mode decided at submit.")
    max_attempts: int
    estimated_seconds: float | None = Field(description="The estimate the mode was decided on.")


class StatusDocument(_Doc):
    """A request's status (GET /v1/requests/{id}, sync answers, webhook bodies, list items)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "req_abc123",
                    "status": "completed",
                    "user_id": "0",
                    "kind": "chat",
                    "agent": "researcher",
                    "progress": {"percent": 100, "message": "done", "step": 5, "total_steps": 5},
                    "result": {"text": "Based on my research...", "agent": "researcher"},
                    "attempts": 1,
                    "created_at": 1785843812.44,
                    "started_at": 1785843812.45,
                    "completed_at": 1785843861.09,
                    "duration_ms": 48640,
                    "delivery": {"mode": "polling"},
                }
            ]
        }
    )

    request_id: str
    status: Status
    user_id: str
    kind: Literal["chat", "trigger", "schedule", "response"] = Field(
        description="Where it came from: POST /v1/chat, a trigger, a schedule's firing (its "
        "request_id is `sched:<schedule id>:<fire time, ms>`; the agent sees `metadata.schedule_id`), "
        "or POST /v1/responses (the OpenAI Responses API)."
    )
    agent: str | None
    progress: ProgressDocument | None
    attempts: int = Field(description="Attempts started so far.")
    created_at: float = Field(description="Unix time, seconds.")
    started_at: float | None
    completed_at: float | None
    duration_ms: int | None
    delivery: DeliveryState | Literal["polling", "webhook"] = Field(
        description="An object on GET /v1/requests/{id}; the mode string in lists and webhook bodies."
    )
    session_id: str | None = None
    trigger: str | None = None
    result: ResultDocument | None = Field(default=None, description="Only when completed.")
    error: ErrorInfoDocument | None = Field(default=None, description="Only when failed.")
    input_request: InputRequestDocument | None = Field(default=None, description="Only when input_required.")
    cancel_reason: Literal["superseded", "input_timeout"] | None = Field(
        default=None,
        description="Only when cancelled: by a newer request of its session (superseded, on_busy "
        "interrupt), or by a question unanswered before it expired (input_timeout).",
    )
    waiting_on: str | None = Field(
        default=None,
        description="GET of a pending request: why it waits (session, retry, user_limit, agent_limit, "
        "formation_limit, worker).",
    )
    queue_position: int | None = Field(
        default=None, description="GET of a pending request: about how many run before it."
    )
    input: RequestInput | None = Field(
        default=None,
        description="GET /v1/requests/{id} only (not lists, webhook bodies, events or sync answers): "
        "what was submitted.",
    )


class Accepted(_Doc):
    """202: the request is stored and under way; poll `poll_url` (also the Location header)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "req_abc123",
                    "status": "pending",
                    "delivery": "polling",
                    "poll_url": "/v1/requests/req_abc123",
                    "estimated_seconds": 42.0,
                }
            ]
        }
    )

    request_id: str
    status: Status
    delivery: Literal["polling", "webhook"]
    poll_url: str
    estimated_seconds: float | None


class RequestList(_Doc):
    """GET /v1/requests: newest first; pass `next_cursor` as `?cursor=` for the next page."""

    requests: list[StatusDocument]
    count: int
    next_cursor: str | None


class InputAnswer(_Doc):
    """202: the answer is kept and the request resumes (`accepted` false: the same answer was
    already given; nothing changed)."""

    request_id: str
    input_id: str
    status: Status
    accepted: bool


class CancelAnswer(_Doc):
    """DELETE /v1/requests/{id}: the request is `cancelled` in the database, in either case.

    `cancellation` says what happened to its work: `immediate` -- no attempt was running (it
    was pending or waiting for a retry, or was already cancelled), so nothing runs any more;
    `cooperative` -- a worker was running an attempt: it is told at once and stops it at its
    next await or `ctx.checkpoint()` (a sync handler's thread is let finish; its result is
    refused). Either way no result can be recorded after this answer."""

    request_id: str
    status: Literal["cancelled"]
    cancellation: Literal["immediate", "cooperative"] = Field(
        description="immediate: nothing was running; cooperative: the running attempt is told to stop."
    )


class DeliveryAttemptDocument(_Doc):
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryDocument(_Doc):
    webhook_id: str = Field(description="The `webhook-id` header this delivery is sent with.")
    url: str
    state: Literal["pending", "retrying", "delivered", "failed"]
    created_at: float
    next_attempt_at: float | None
    attempts: list[DeliveryAttemptDocument]


class DeliveryList(_Doc):
    request_id: str
    deliveries: list[DeliveryDocument]
    count: int


class AttemptError(_Doc):
    type: str
    message: str


class AttemptDocument(_Doc):
    attempt: int
    worker_id: str | None
    outcome: Literal["running", "completed", "retried", "failed", "cancelled", "lease_lost", "worker_lost"]
    started_at: float
    ended_at: float | None
    duration_ms: int | None
    error: AttemptError | None
    traceback: str | None = Field(default=None, description="Admins only: the stored traceback.")


class AttemptList(_Doc):
    request_id: str
    attempts: list[AttemptDocument]
    count: int


class Redelivery(_Doc):
    request_id: str
    delivery: DeliveryDocument


class WebhookSecret(_Doc):
    webhook_secret: str
    source: Literal["config", "generated"]


class TriggerDocument(_Doc):
    name: str
    description: str
    fields: list[str]
    agent: str | None
    use_async: bool | None


class TriggerList(_Doc):
    formation_id: str
    triggers: list[TriggerDocument]
    count: int


class JsonRpcCall(BaseModel):
    """POST /a2a: one A2A JSON-RPC 2.0 call (`SendMessage`, `SendStreamingMessage`, `GetTask`,
    `CancelTask`, `SubscribeToTask`, `ListTasks`, the push-notification config methods); the
    params of each method are the A2A specification's (a2a-sdk parses them)."""

    jsonrpc: Literal["2.0"]
    id: str | int | None = None
    method: str
    params: dict[str, Any] | None = None


class JsonRpcError(BaseModel):
    code: int
    message: str
    data: Any = None


class JsonRpcAnswer(BaseModel):
    """A JSON-RPC 2.0 answer (HTTP 200 for protocol errors too, as JSON-RPC has it); a streaming
    method answers Server-Sent Events whose data are such answers."""

    jsonrpc: Literal["2.0"]
    id: str | int | None = None
    result: Any = None
    error: JsonRpcError | None = None


class Health(_Doc):
    status: Literal["ok"]
    version: str


class Ready(_Doc):
    status: Literal["ready", "unavailable"]
    reason: str | None = Field(default=None, description="Why not ready (503 only).")
