"""POST /v1/admin/requests/cancel (admin): cancel the queued requests a filter matches.

`{"filter": {status, agent, user_id, kind, since, until}, "dry_run": true}` answers
`{"matched": n}`, the pending and processing requests the filter matches (the list's filters:
api/request_filters.py). `{"dry_run": false, "expect": n}` cancels them, oldest first, at most
MAX_BULK a call, if `expect` still equals the match count (else 409 CONFLICT: the confirmation
the operator saw is what runs). Each cancel is the ordinary `store.request_cancel` (its own
transaction; a request that ended meanwhile is skipped) and is logged with its id and the key.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, require_admin
from errand.api.body import read_model
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.api.request_filters import MAX_BULK, BulkRun, parse_filters
from errand.errors import Conflict, NotFound, RequestExpired
from errand.metrics import REQUESTS, agent_label
from errand.models import Status

log = logging.getLogger("errand.api")


class RequestFilter(BaseModel):
    """The list's filters (GET /v1/requests), combined with AND."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = None
    agent: str | None = None
    user_id: str | None = None
    kind: str | None = None
    since: float | None = None
    until: float | None = None


class CancelBody(BulkRun):
    """POST /v1/admin/requests/cancel."""

    filter: RequestFilter = Field(default_factory=RequestFilter)


async def bulk_cancel(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/admin/requests/cancel."""
    require_admin(owner)
    server = ctx.config.server
    body = await read_model(request, CancelBody, server.max_body_bytes, server.max_json_depth)
    wanted: dict[str, Any] = body.filter.model_dump()
    filters = parse_filters(wanted)
    matched, ids = await ctx.store.queued_matching(filters.status, filters.user_id, filters.match, MAX_BULK)
    if (counted := body.dry_run_answer(matched)) is not None:
        return counted
    cancelled = 0
    for request_id in ids:
        try:
            req, how = await ctx.store.request_cancel(request_id)
        except (Conflict, NotFound, RequestExpired):  # it ended (or went) meanwhile
            log.info("bulk cancel skipped %s: already ended", request_id, extra={"request_id": request_id})
            continue
        cancelled += 1
        REQUESTS.labels(req.kind, agent_label(req.agent), Status.CANCELLED.value).inc()
        log.info(
            "cancelled %s by admin key %s (bulk, %s)",
            request_id,
            owner.key_id,
            how,
            extra={"request_id": request_id},
        )
    return json_response(
        {"cancelled": cancelled, "skipped": len(ids) - cancelled, "remaining": matched - len(ids)}
    )
