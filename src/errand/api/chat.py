"""POST /v1/chat: validate, decide sync or async, submit durably, answer 202 or 200.

The request row is committed by `store.submit` before any answer is sent, so a 202 always
names a request that exists. A sync call waits for the terminal state on the store's change
notifications; if the work outlives `async.sync_wait_seconds` it answers 202 like an async
call and the work goes on. A client's webhook URL passes the SSRF guard
(delivery/urlguard.py: http(s), public addresses unless allow-listed) before anything is stored.
Unknown `agent_id` answers 404 RESOURCE_NOT_FOUND (the registry's
error; the same code as an unknown trigger). `stream: true` submits async and answers with
the new request's Server-Sent Event stream (api/sse.py).

The body is validated strictly (JSON `true` is a bool, `"true"` is not; `1` is not a string) and
unknown fields are refused: a typo like `mesage` or `asnyc` must fail loudly rather than be
ignored and silently change what runs. A few MUXI body fields are known and accepted: `user_id`
(MUXI's deprecated fallback for the X-Muxi-User-Id header), `group_id` and `source_channel`
(reserved / telemetry in MUXI; ignored here).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, with_body_user
from errand.api.body import invalid_from, parse_object, read_body
from errand.api.context import ApiContext
from errand.api.sse import chat_stream
from errand.api.submit import answer, check_webhook_url, estimate_for, idempotency_key, max_attempts, submit
from errand.clock import new_request_id
from errand.mode import decide
from errand.models import PRIORITY_BY_ORIGIN, Mode, NewRequest
from errand.request_ids import CHOSEN_PATTERN, stored_id

CHAT_PATH = "/v1/chat"


class ChatBody(BaseModel):
    """POST /v1/chat. `async` and `use_async` are seed-compatible synonyms of `mode`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    message: str
    agent_id: str | None = Field(default=None, min_length=1, max_length=128)
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, Any] | None = None
    webhook_url: str | None = Field(default=None, max_length=2048)
    threshold_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    stream: bool = False
    priority: int | None = Field(default=None, ge=1, le=5)
    fairness_key: str | None = Field(default=None, min_length=1, max_length=256)
    on_busy: Literal["enqueue", "reject", "interrupt"] | None = None
    multitask_strategy: Literal["enqueue", "reject", "interrupt"] | None = None  # LangGraph's name
    request_id: str | None = Field(default=None, pattern=CHOSEN_PATTERN)
    mode: Literal["auto", "sync", "async"] | None = None
    async_: bool | None = Field(default=None, alias="async")
    use_async: bool | None = None
    # MUXI fields: user_id is the deprecated header fallback; the other two are ignored.
    user_id: str | None = None
    group_id: str | None = None
    source_channel: str | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> ChatBody:
        self.explicit_mode()  # raises on conflicting mode / async / use_async
        if self.on_busy and self.multitask_strategy and self.on_busy != self.multitask_strategy:
            raise ValueError("on_busy and multitask_strategy disagree; send one of them")
        return self

    def default_priority(self, explicit: Mode | None) -> int:
        """The request's priority, else the default of its origin (models.PRIORITY_BY_ORIGIN):
        a sync call (someone waits) first, then auto and streams, then async."""
        if self.priority is not None:
            return self.priority
        origin = "auto" if explicit is None or self.stream else explicit.value
        return PRIORITY_BY_ORIGIN[origin]

    def explicit_mode(self) -> Mode | None:
        """The mode the request asked for, or None; ValueError if its three spellings disagree."""
        said: dict[str, Mode] = {}
        if self.mode is not None:
            said["mode"] = Mode(self.mode)
        for name, flag in (("async", self.async_), ("use_async", self.use_async)):
            if flag is not None:
                said[name] = Mode.ASYNC if flag else Mode.SYNC
        if len(set(said.values())) > 1:
            shown = ", ".join(f"{k}={_show(k, v)}" for k, v in said.items())
            raise ValueError(f"mode, async and use_async disagree ({shown}); send one of them")
        return next(iter(said.values()), None)


def _show(name: str, mode: Mode) -> str:
    if name == "mode":
        return f'"{mode.value}"'
    return "true" if mode is Mode.ASYNC else "false"


_CHAT_FIELDS = sorted({f.alias or name for name, f in ChatBody.model_fields.items()})


def validate_chat(data: dict[str, Any]) -> ChatBody:
    """The body as a ChatBody, or a 422 naming the first bad field."""
    try:
        return ChatBody.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc, _CHAT_FIELDS) from None


async def chat(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/chat."""
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    data = parse_object(raw, ctx.config.server.max_json_depth)
    body = validate_chat(data)
    owner = with_body_user(owner, body.user_id)
    idempotency = idempotency_key(request, owner, data, CHAT_PATH)
    agent_id = ctx.agents.get(body.agent_id).id
    if body.webhook_url is not None:
        await check_webhook_url(body.webhook_url, ctx)
    new = await _new_request(body, owner, agent_id, ctx)
    req = await submit(ctx, new, idempotency, request.headers)
    if body.stream:
        return chat_stream(request, req, ctx)
    return await answer(request, req, ctx)


async def _new_request(body: ChatBody, owner: Owner, agent_id: str, ctx: ApiContext) -> NewRequest:
    cfg = ctx.config.async_
    webhook = body.webhook_url or cfg.webhook_url
    threshold = body.threshold_seconds if body.threshold_seconds is not None else cfg.threshold_seconds
    estimate = await estimate_for(ctx, agent_id, body.message)
    # A stream is its own wait: the request runs async and the answer follows it.
    mode = Mode.ASYNC if body.stream else decide(body.explicit_mode(), webhook, cfg.mode, estimate, threshold)
    return NewRequest(
        id=stored_id(body.request_id, owner.key_id, owner.user_id) if body.request_id else new_request_id(),
        owner=owner.key_id,
        user_id=owner.user_id,
        message=body.message,
        kind="chat",
        # No agent named and a router configured: the worker routes it (a model call is too
        # slow for this path); the estimate above is the default agent's.
        agent=None if body.agent_id is None and ctx.config.router is not None else agent_id,
        session_id=body.session_id,
        metadata=dict(body.metadata or {}),
        webhook_url=webhook,
        mode=mode,
        max_attempts=max_attempts(ctx, agent_id),
        estimated_seconds=estimate,
        priority=body.default_priority(body.explicit_mode()),
        fairness_key=body.fairness_key,
        aging_seconds=ctx.config.limits.priority_aging_seconds,
        on_busy=body.on_busy or body.multitask_strategy or "enqueue",
    )
