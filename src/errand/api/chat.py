"""POST /v1/chat: validate, decide sync or async, submit durably, answer 202 or 200.

The request row is committed by `store.submit` before any answer is sent, so a 202 always
names a request that exists. A sync call waits for the terminal state on the store's change
notifications; if the work outlives `async.sync_wait_seconds` it answers 202 like an async
call and the work goes on. A client's webhook URL passes the SSRF guard
(delivery/urlguard.py: http(s), public addresses unless allow-listed) before anything is stored.
Unknown `agent_id` answers 404 RESOURCE_NOT_FOUND (the registry's
error; the same code as an unknown trigger).
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, with_body_user
from errand.api.bodies import ChatBody, fingerprint, parse_object, read_body, validate_chat
from errand.api.common import ApiContext, accepted, wait_terminal
from errand.api.errors import json_response
from errand.clock import new_request_id
from errand.delivery.urlguard import check_url_async
from errand.errors import InvalidRequest
from errand.mode import MIN_HISTORY, decide, estimate_seconds
from errand.models import IdempotencyKey, Mode, NewRequest, to_document
from errand.models import Request as StoredRequest

CHAT_PATH = "/v1/chat"
IDEMPOTENCY_HEADERS = ("x-muxi-idempotency-key", "idempotency-key")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
HISTORY_TTL_S = 5.0
"""A usable duration history is re-read at most this often per agent (estimates need not be
fresher); a history too short to use is re-read on every submit, as it is about to change."""

SUBMITTED = Counter("errand_api_submitted_total", "Requests accepted by the API", ["kind", "mode"])


async def chat(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/chat."""
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    data = parse_object(raw)
    body = validate_chat(data)
    owner = with_body_user(owner, body.user_id)
    idempotency = idempotency_key(request, owner, data)
    if body.stream:
        raise InvalidRequest(
            "stream: true is not supported yet; poll GET /v1/requests/{id} (?wait=N) instead",
            details=[{"field": "stream", "message": "not supported yet", "type": "unsupported"}],
        )
    agent_id = ctx.agents.get(body.agent_id).id
    if body.webhook_url is not None:
        await check_webhook_url(body.webhook_url, ctx)
    new = await _new_request(body, owner, agent_id, ctx)
    req, created = await ctx.store.submit(new, idempotency)
    if created:
        SUBMITTED.labels("chat", req.mode.value).inc()
    return await answer(request, req, ctx, fresh=created)


async def answer(request: Request, req: StoredRequest, ctx: ApiContext, *, fresh: bool) -> Response:
    """200 with the document once terminal (sync calls), else 202 with the true state now.

    An idempotent replay answers as the original call did: a sync original waits again."""
    store = ctx.store
    if req.mode is Mode.SYNC:
        req = await wait_terminal(store, req, ctx.config.async_.sync_wait)
        if req.is_terminal:
            return json_response(to_document(req))
    elif fresh:
        req = await store.get(req.id)  # a worker may have picked it up already
    return accepted(request, req)


async def _new_request(body: ChatBody, owner: Owner, agent_id: str, ctx: ApiContext) -> NewRequest:
    cfg = ctx.config.async_
    webhook = body.webhook_url or cfg.webhook_url
    threshold = body.threshold_seconds if body.threshold_seconds is not None else cfg.threshold_seconds
    estimate = estimate_seconds(body.message, await _history(agent_id, ctx))
    mode = decide(body.explicit_mode(), webhook, cfg.mode, estimate, threshold)
    return NewRequest(
        id=body.request_id or new_request_id(),
        owner=owner.key_id,
        user_id=owner.user_id,
        message=body.message,
        kind="chat",
        agent=agent_id,
        session_id=body.session_id,
        metadata=dict(body.metadata or {}),
        webhook_url=webhook,
        mode=mode,
        max_attempts=ctx.config.workflow.retry.max_attempts,
        estimated_seconds=estimate,
    )


async def _history(agent_id: str, ctx: ApiContext) -> list[float]:
    now = asyncio.get_running_loop().time()
    cached = ctx.history.get(agent_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    durations = await ctx.store.duration_history(agent_id)
    if len(durations) >= MIN_HISTORY:
        ctx.history[agent_id] = (now + HISTORY_TTL_S, durations)
    return durations


def idempotency_key(request: Request, owner: Owner, data: dict[str, object]) -> IdempotencyKey | None:
    """The caller's idempotency key, scoped to (key, user, path) and bound to the body.

    The path is the canonical /v1 one, so a retry through the /api/{formation_id} alias
    finds the original."""
    key = next((v for h in IDEMPOTENCY_HEADERS if (v := request.headers.get(h)) is not None), None)
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidRequest(
            "idempotency key must be 1-255 printable ASCII characters without spaces",
            details={"field": "X-Muxi-Idempotency-Key"},
        )
    scope = f"{owner.key_id}:{owner.user_id}:{CHAT_PATH}"
    return IdempotencyKey(key=key, scope=scope, fingerprint=fingerprint(data))


async def check_webhook_url(url: str, ctx: ApiContext) -> None:
    """422 unless `url` is a well-formed http(s) URL with a host that the SSRF guard accepts."""
    try:
        parts = urlsplit(url)
        shaped = parts.scheme in ("http", "https") and bool(parts.hostname)
        if shaped:
            parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        shaped = False
    if not shaped:
        raise InvalidRequest(
            "webhook_url must be an http(s) URL with a host", details={"field": "webhook_url"}
        )
    await check_url_async(url, ctx.config.async_.webhook_allow_hosts)
