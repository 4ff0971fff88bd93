"""The webhook outbox, seen: GET /v1/requests/{id}/deliveries, POST /v1/requests/{id}/redeliver,
and (admin) GET /v1/admin/webhook-secret.

Every delivery attempt the dispatcher makes is recorded by the store (status code, error,
duration, time), so an owner can see why their receiver never got a result without access to
server logs. Reading follows the ownership rule of every request read (another owner's request
is a 404, like an unknown id); a request without a webhook simply has no deliveries.

Redelivery is admin-only: it makes errand POST to a URL again, so it is an operator's tool
(a receiver that was down past the last retry, a lost event). A non-admin key gets 401, before
any lookup (see auth.require_admin). The store adds a new delivery of the same status document,
due now, under a new `webhook-id` (a receiver that deduplicates on the id must see it as a new
event: it was asked for). 409 CONFLICT when the request has not ended yet (its webhook is still
to come) or has no webhook URL. The answer is 202: the dispatcher sends it moments later.

The signing secret is admin-only too (401 for any other key), for operators who hand it to
receivers without shell access to `errand webhook-secret`; the answer is never cached.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, get_owned, require_admin, require_full_admin, shown_id
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.delivery.secret import signing_secret
from errand.errors import NotFound
from errand.models import Delivery
from errand.request_ids import is_request_id


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    """One delivery with all its attempts; `webhook_id` is the `webhook-id` header it is sent with."""
    return {
        "webhook_id": delivery.id,
        "url": delivery.url,
        "state": delivery.state,
        "created_at": delivery.created_at,
        "next_attempt_at": delivery.next_attempt_at,
        "attempts": [
            {
                "attempt": a.attempt,
                "at": a.at,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in delivery.attempts
        ],
    }


async def list_deliveries(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/requests/{id}/deliveries: every delivery (first, then redeliveries), oldest first."""
    req = await get_owned(ctx.store, owner, request.path_params["request_id"])
    deliveries = [delivery_document(d) for d in await ctx.store.list_deliveries(req.id)]
    body = {"request_id": shown_id(owner, req.id), "deliveries": deliveries, "count": len(deliveries)}
    return json_response(body)


async def redeliver(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/requests/{id}/redeliver (admin): queue the webhook again; 202 with the new delivery."""
    require_admin(owner)
    request_id = request.path_params["request_id"]
    if not is_request_id(request_id):  # e.g. a NUL: no lookup, the same 404 on both backends
        raise NotFound("Request not found")
    delivery = await ctx.store.enqueue_redelivery(request_id)
    return json_response({"request_id": delivery.request_id, "delivery": delivery_document(delivery)}, 202)


async def webhook_secret(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/admin/webhook-secret (admin; a viewer gets 403): what webhooks are signed with, and
    where it comes from."""
    require_full_admin(owner)
    secret = await signing_secret(ctx.config, ctx.store)
    source = "config" if ctx.config.async_.webhook_secret else "generated"
    return json_response({"webhook_secret": secret, "source": source}, headers={"Cache-Control": "no-store"})
