"""POST /v1/chat: validate, decide sync or async, submit durably, answer 202 or 200.

The request row is committed by `store.submit` before any answer is sent, so a 202 always
names a request that exists. A sync call waits for the terminal state on the store's change
notifications; if the work outlives `async.sync_wait_seconds` it answers 202 like an async
call and the work goes on. A client's webhook URL passes the SSRF guard
(delivery/urlguard.py: http(s), public addresses unless allow-listed) before anything is stored.
Unknown `agent_id` answers 404 RESOURCE_NOT_FOUND (the registry's
error; the same code as an unknown trigger). `stream: true` submits async and answers with
the new request's Server-Sent Event stream (api/sse.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, with_body_user
from errand.api.bodies import ChatBody, parse_object, read_body, validate_chat
from errand.api.common import (
    SUBMITTED,
    ApiContext,
    answer,
    check_webhook_url,
    estimate_for,
    idempotency_key,
)
from errand.api.sse import chat_stream
from errand.clock import new_request_id
from errand.mode import decide
from errand.models import Mode, NewRequest

CHAT_PATH = "/v1/chat"


async def chat(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/chat."""
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    data = parse_object(raw)
    body = validate_chat(data)
    owner = with_body_user(owner, body.user_id)
    idempotency = idempotency_key(request, owner, data, CHAT_PATH)
    agent_id = ctx.agents.get(body.agent_id).id
    if body.webhook_url is not None:
        await check_webhook_url(body.webhook_url, ctx)
    new = await _new_request(body, owner, agent_id, ctx)
    req, created = await ctx.store.submit(new, idempotency)
    if created:
        SUBMITTED.labels("chat", req.mode.value).inc()
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
        id=body.request_id or new_request_id(),
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
        max_attempts=ctx.config.workflow.retry.max_attempts,
        estimated_seconds=estimate,
    )
