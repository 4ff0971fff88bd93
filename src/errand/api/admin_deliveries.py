"""GET /v1/admin/deliveries (admin or viewer) and POST /v1/admin/deliveries/redeliver (admin):
webhook deliveries across requests, and redelivering a chosen or filtered set.

The list is newest first, keyset-paginated like /v1/requests. A bulk redeliver takes either
`request_ids` (at most MAX_BULK) or `{"filter": {"state": "failed"}, "dry_run", "expect"}`:
every request whose latest delivery failed. As for the bulk cancel, a run needs `expect` equal
to the current match count (409 otherwise), so the set the operator confirmed is the set sent.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, require_admin
from errand.api.body import read_model
from errand.api.context import ApiContext
from errand.api.deliveries import delivery_document
from errand.api.errors import json_response
from errand.api.request_filters import MAX_BULK, BulkRun
from errand.api.requests import MAX_CURSOR, parse_limit
from errand.console_models import DELIVERY_STATES
from errand.errors import Conflict, InvalidRequest, NotFound, RequestExpired
from errand.request_ids import is_request_id

log = logging.getLogger("errand.api")


async def list_all_deliveries(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/admin/deliveries?state=failed|pending|delivered&limit&cursor."""
    require_admin(owner)
    query = request.query_params
    state = query.get("state") or None
    if state is not None and state not in DELIVERY_STATES:
        raise InvalidRequest(f"state must be one of {', '.join(DELIVERY_STATES)}", details={"field": "state"})
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise InvalidRequest("cursor is not valid", details={"field": "cursor"})
    page = await ctx.store.list_all_deliveries(state, parse_limit(query.get("limit")), cursor)
    docs = [{**delivery_document(d), "request_id": d.request_id} for d in page.deliveries]
    return json_response({"deliveries": docs, "count": len(docs), "next_cursor": page.next_cursor})


class DeliveryFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["failed"] = Field(description="Requests whose latest delivery failed.")


class RedeliverBody(BulkRun):
    """POST /v1/admin/deliveries/redeliver: `request_ids`, or a `filter` (with dry_run / expect)."""

    request_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_BULK)
    filter: DeliveryFilter | None = None


async def bulk_redeliver(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/admin/deliveries/redeliver."""
    require_admin(owner)
    server = ctx.config.server
    body = await read_model(request, RedeliverBody, server.max_body_bytes, server.max_json_depth)
    if (body.request_ids is None) == (body.filter is None):
        raise InvalidRequest("send either request_ids or filter", details={"field": "request_ids"})
    if body.request_ids is not None:
        ids = body.request_ids
    else:
        matched, ids = await ctx.store.failed_deliveries_matching(MAX_BULK)
        if (counted := body.dry_run_answer(matched)) is not None:
            return counted
    redelivered = 0
    for request_id in ids:
        try:
            if not is_request_id(request_id):
                raise NotFound("Request not found")
            await ctx.store.enqueue_redelivery(request_id)
        except (NotFound, RequestExpired, Conflict) as exc:
            log.info("bulk redeliver skipped %s: %s", request_id, exc, extra={"request_id": request_id})
            continue
        redelivered += 1
        log.info(
            "bulk redeliver of %s by admin key %s", request_id, owner.key_id, extra={"request_id": request_id}
        )
    return json_response({"redelivered": redelivered, "skipped": len(ids) - redelivered})
