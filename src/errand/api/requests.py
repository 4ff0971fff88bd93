"""GET /v1/requests/{id} (with ?wait long-poll), GET /v1/requests, DELETE /v1/requests/{id}.

Reads go through `store.get` and the ownership rule in auth.py: another owner's request
answers 404 exactly like an unknown id. A purged request answers 410 REQUEST_EXPIRED.
GET of one request shows its webhook delivery state (`delivery: {"mode", "state", ...}`, one
more read, for webhook requests only); the list shows only the mode string (`"polling"` or
`"webhook"`), as the 202 acknowledgement does, so a page costs one query whatever it holds.
List items are summaries: the status document without `result` (the store does not even read
it; ten 20 MB results made a 200 MB page). GET /v1/requests/{id} has the result, and only it
has `input` (what was submitted, `input_document`): lists, webhook bodies, events and sync
answers stay small.

`status_document()` and `wait_terminal()` are also what a sync answer of the submit path
(api/submit.py) is made of: one status document, one long-poll wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, get_owned, list_filter, shown_id
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.api.request_filters import parse_filters
from errand.errors import Conflict, InvalidRequest
from errand.limits_config import claim_limits
from errand.metrics import REQUESTS, agent_label
from errand.models import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, Status, default_fairness_key, to_document
from errand.models import Request as StoredRequest
from errand.store.base import Store

WAIT_CAP_S = 60.0
MAX_CURSOR = 512

log = logging.getLogger("errand.api")


async def get_request(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/requests/{id}; `?wait=N` returns as soon as the request is terminal."""
    wait = parse_wait(request.query_params.get("wait"), ctx.config.server.max_wait_seconds)
    store = ctx.store
    req = await get_owned(ctx.store, owner, request.path_params["request_id"])
    if wait > 0:
        req = await wait_terminal(store, req, wait)
    doc = await status_document(ctx, req, stored_id=owner.is_admin)
    if not req.expired:  # a tombstone's input is purged (it answers 410 before this anyway)
        doc["input"] = input_document(req)
    return json_response(doc)


def input_document(req: StoredRequest) -> dict[str, Any]:
    """What was submitted (schemas.RequestInput). The message is bounded by the submit body cap
    (`server.max_body_bytes`). `fairness_key` is null when the request named none (its turn is
    its owner's and user's: the stored default holds a key fingerprint, shown to nobody); the
    webhook URL is left out (it may be the server's configured one, not the caller's)."""
    chosen = req.fairness_key != default_fairness_key(req.owner, req.user_id)
    return {
        "message": req.message,
        "metadata": req.metadata,
        "session_id": req.session_id,
        "trigger": req.trigger,
        "priority": req.priority,
        "fairness_key": req.fairness_key if chosen and req.fairness_key else None,
        "mode": req.mode.value,
        "max_attempts": req.max_attempts,
        "estimated_seconds": req.estimated_seconds,
    }


async def status_document(ctx: ApiContext, req: StoredRequest, *, stored_id: bool = False) -> dict[str, Any]:
    """The status document with its delivery state (GET /v1/requests/{id}, sync answers).

    Only a webhook request costs an extra read (its latest delivery); a polling one never does.
    `stored_id`: an admin's view (see request_ids)."""
    latest = None
    if req.webhook_url:
        deliveries = await ctx.store.list_deliveries(req.id) if req.is_terminal else []
        latest = deliveries[-1] if deliveries else None
    doc = to_document(req, with_delivery=True, delivery=latest, stored_id=stored_id)
    if req.status is Status.PENDING:  # why it waits, and about how many go first
        info = await ctx.store.queue_info(req, claim_limits(ctx.config))
        doc["waiting_on"], doc["queue_position"] = info.waiting_on, info.queue_position
    return doc


async def wait_terminal(store: Store, req: StoredRequest, timeout: float) -> StoredRequest:
    """The request once terminal, or as it is after `timeout` seconds: woken by the store's
    change notifications, never by polling."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not req.is_terminal:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        if await store.wait_for_change(req.id, req.seq, remaining):
            req = await store.get(req.id)
    return req


async def list_requests(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/requests: the caller's requests, newest first, paginated by an opaque cursor
    (one the store did not make is its InvalidRequest, a 422); filtered by status, agent, kind,
    since/until and, for an admin or viewer, user_id (api/request_filters.py)."""
    query = request.query_params
    filters = parse_filters(query)
    limit = parse_limit(query.get("limit"))
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise InvalidRequest("cursor is not valid", details={"field": "cursor"})
    owner_id, user_id = list_filter(owner)
    if filters.user_id is not None:
        if not owner.is_admin:
            raise InvalidRequest(
                "user_id filters are for admin and viewer keys: a client key lists its own user",
                details={"field": "user_id"},
            )
        user_id = filters.user_id
    page = await ctx.store.list(
        owner=owner_id,
        user_id=user_id,
        status=filters.status,
        limit=limit,
        cursor=cursor,
        match=filters.match,
    )
    docs = [to_document(r, stored_id=owner.is_admin) for r in page.requests]
    return json_response({"requests": docs, "count": len(docs), "next_cursor": page.next_cursor})


async def cancel_request(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """DELETE /v1/requests/{id}: 200 cancelled (also when already cancelled); 409 if it ended."""
    store = ctx.store
    req = await get_owned(ctx.store, owner, request.path_params["request_id"])
    shown = shown_id(owner, req.id)
    if req.is_terminal and req.status is not Status.CANCELLED:
        raise _already(shown, req.status)
    was_cancelled = req.status is Status.CANCELLED
    try:
        req, how = await store.request_cancel(req.id)
    except Conflict:  # it ended between our read and the cancel
        raise _already(shown, (await store.get(req.id)).status) from None
    by = f"admin key {owner.key_id}" if owner.is_admin else f"key {owner.key_id} user {owner.user_id}"
    log.info("cancelled %s by %s (%s)", req.id, by, how, extra={"request_id": req.id})
    if not was_cancelled:
        REQUESTS.labels(req.kind, agent_label(req.agent), Status.CANCELLED.value).inc()
    return json_response({"request_id": shown, "status": req.status.value, "cancellation": how})


def _already(request_id: str, status: Status) -> Conflict:
    return Conflict(
        f"Request {request_id} is already {status.value} and cannot be cancelled",
        details={"request_id": request_id, "status": status.value},
    )


def parse_wait(value: str | None, max_wait: float) -> float:
    """Seconds to long-poll: a non-negative number, capped at min(max_wait, 60)."""
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidRequest(
            "wait must be a number of seconds >= 0 (at most 60 are waited)", details={"field": "wait"}
        )
    return min(seconds, max_wait, WAIT_CAP_S)


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return LIST_LIMIT_DEFAULT
    if not (value.isascii() and value.isdigit() and len(value) <= 4 and 1 <= int(value) <= LIST_LIMIT_MAX):
        raise InvalidRequest(
            f"limit must be an integer from 1 to {LIST_LIMIT_MAX}", details={"field": "limit"}
        )
    return int(value)
