"""The submit path POST /v1/chat and POST /v1/triggers/{name} share: one way to accept work.

Both routes build a NewRequest their own way, then go through the same steps here, so they
honour idempotency keys, webhook URL checks and the sync/async answer identically:
`idempotency_key()` (scoped to key, user and canonical path, bound to the body's fingerprint),
`check_webhook_url()` (shape, signing secret, SSRF guard), `estimate_for()` (duration, from a
short-lived per-agent history cache), `submit()` (the durable `store.submit`, counted) and
`answer()` (200 with the status document once terminal for a sync call, else 202).
`submit()` also keeps the caller's W3C `traceparent` with the request and, with tracing on, is
the `errand.submit` span the worker's and the webhooks' spans descend from (tracing.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from errand import tracing
from errand.api.auth import Owner
from errand.api.context import ApiContext, request_url
from errand.api.errors import json_response
from errand.api.requests import status_document, wait_terminal
from errand.delivery.urlguard import check_url_async
from errand.errors import InvalidRequest, QueueFull, StoreUnavailable
from errand.logs import REQUEST_ID
from errand.metrics import REQUESTS, SUBMIT_SECONDS, agent_label
from errand.mode import MIN_HISTORY, estimate_seconds
from errand.models import IdempotencyKey, Mode, NewRequest
from errand.models import Request as StoredRequest
from errand.request_ids import public_id

IDEMPOTENCY_HEADERS = ("x-muxi-idempotency-key", "idempotency-key")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

log = logging.getLogger("errand.api")

HISTORY_TTL_S = 5.0
"""A usable duration history is re-read at most this often per agent (estimates need not be
fresher); a history too short to use is re-read after SHORT_HISTORY_TTL_S, as it is about to change."""
SHORT_HISTORY_TTL_S = 0.2


def idempotency_key(request: Request, owner: Owner, data: dict[str, Any], path: str) -> IdempotencyKey | None:
    """The caller's idempotency key, scoped to (key, user, path) and bound to the body.

    `path` is the canonical /v1 one (e.g. /v1/chat, /v1/triggers/NAME), so a retry through the
    /api/{formation_id} alias finds the original."""
    key = next((v for h in IDEMPOTENCY_HEADERS if (v := request.headers.get(h)) is not None), None)
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidRequest(
            "idempotency key must be 1-255 printable ASCII characters without spaces",
            details={"field": "X-Muxi-Idempotency-Key"},
        )
    scope = f"{owner.key_id}:{owner.user_id}:{path}"
    return IdempotencyKey(key=key, scope=scope, fingerprint=fingerprint(data))


def fingerprint(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact): same request, same fingerprint."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


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


async def estimate_for(ctx: ApiContext, agent_id: str, message: str) -> float:
    """`estimated_seconds` of a message for an agent: its recent p90 once it has history, else
    the heuristic of mode.py (message, and an LLM agent's tools and steps)."""
    agent = ctx.config.agent(agent_id)
    tools, steps = (len(agent.tools), agent.max_steps) if agent is not None and agent.is_llm else (0, 1)
    expected = agent.expected_seconds if agent is not None else None
    history = await _history(agent_id, ctx)
    return estimate_seconds(message, history, tool_count=tools, max_steps=steps, expected=expected)


async def _history(agent_id: str, ctx: ApiContext) -> list[float]:
    now = asyncio.get_running_loop().time()
    cached = ctx.history.get(agent_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    durations = await ctx.store.duration_history(agent_id)
    ttl = HISTORY_TTL_S if len(durations) >= MIN_HISTORY else SHORT_HISTORY_TTL_S
    ctx.history[agent_id] = (now + ttl, durations)
    return durations


def max_attempts(ctx: ApiContext, agent_id: str | None) -> int:
    """Attempts a new request of this agent gets: its own retry policy's, else the workflow's."""
    return ctx.config.retry_for(agent_id).max_attempts


def queue_full(ctx: ApiContext, new: NewRequest, refused: QueueFull) -> QueueFull:
    """The store's QueueFull (the user's queue is at limits.max_queued_per_user, counted in the
    insert's transaction, so exact under concurrent submits), logged, with its Retry-After."""
    log.info(
        "submit of %s refused: user %s has %s requests queued",
        new.id,
        new.user_id,
        new.max_queued,
        extra={"request_id": new.id},
    )
    retry_after = ctx.config.limits.queue_full_retry_after
    return QueueFull(refused.message, retry_after=retry_after, details=refused.details)


async def submit(
    ctx: ApiContext, new: NewRequest, idempotency: IdempotencyKey | None, headers: Mapping[str, str]
) -> StoredRequest:
    """The request as stored (committed before any answer), or the original of an idempotent
    replay; only a new one counts (errand_requests_total{status="accepted"},
    errand_submit_duration_seconds). It is stored with the trace context of `errand.submit`
    (tracing on) or else the caller's `traceparent` as sent. QueueFull (429) when the user's
    queue is at limits.max_queued_per_user (the store checks it: `NewRequest.max_queued`)."""
    new = replace(new, max_queued=ctx.config.limits.max_queued_per_user)
    REQUEST_ID.set(new.id)  # the access line of this call names it
    started = time.perf_counter()
    caller = tracing.from_headers(headers)
    attributes = {"errand.request_id": new.id, "errand.kind": new.kind, "errand.mode": new.mode.value}
    with tracing.span("errand.submit", kind="server", parent=caller, attributes=attributes) as span:
        context = tracing.carrier() or caller
        if context is not None:
            new = replace(new, trace_context=context)
        try:
            req, created = await ctx.store.submit(new, idempotency)
        except QueueFull as exc:
            raise queue_full(ctx, new, exc) from None
        except StoreUnavailable as exc:  # 503: the caller retries; the operator learns why here
            log.warning(
                "submit of %s refused, the store is unavailable: %s",
                new.id,
                exc.message,
                extra={"request_id": new.id},
            )
            raise
        span.set_attribute("errand.replay", not created)
    if created:
        SUBMIT_SECONDS.labels(new.kind).observe(time.perf_counter() - started)
        REQUESTS.labels(new.kind, agent_label(new.agent), "accepted").inc()
        log.info(
            "accepted %s: kind=%s agent=%s mode=%s user=%s",
            req.id,
            req.kind,
            req.agent or "(default)",
            req.mode.value,
            req.user_id,
            extra={"request_id": req.id},
        )
    else:
        REQUEST_ID.set(req.id)
        log.debug("idempotent replay of %s", req.id, extra={"request_id": req.id})
    return req


async def answer(request: Request, req: StoredRequest, ctx: ApiContext) -> Response:
    """200 with the document once terminal (sync calls), else 202 with the true state now.

    An idempotent replay answers as the original call did: a sync original waits again."""
    store = ctx.store
    if req.mode is Mode.SYNC:
        req = await wait_terminal(store, req, ctx.config.async_.sync_wait)
        if req.is_terminal:
            return json_response(await status_document(ctx, req))
    # A fresh request reports the state it was committed in (pending); re-reading it to catch a
    # pickup in the same millisecond cost ~20% of submit throughput and told the caller nothing.
    return accepted(request, req)


def accepted(request: Request, req: StoredRequest) -> Response:
    """202: the request is durable and under way; where to poll for it."""
    url = request_url(request, public_id(req.id))
    body = {
        "request_id": public_id(req.id),
        "status": req.status.value,
        "delivery": "webhook" if req.webhook_url else "polling",
        "poll_url": url,
        "estimated_seconds": req.estimated_seconds,
    }
    return json_response(body, 202, {"Location": url})
