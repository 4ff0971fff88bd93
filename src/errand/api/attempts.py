"""GET /v1/requests/{id}/attempts: every attempt of a request, and why each one ended.

One item per claim, oldest first: its number, the worker that ran it, start and end, outcome
(running, completed, retried, failed, cancelled, lease_lost, worker_lost) and error. The
traceback of an exception is shown to an admin only: it names server paths and code, which
the owner of a request has no need of (they see the error type and message, as in the status
document). Reading follows the ownership rule of every request read: another owner's request
is a 404, like an unknown id; a purged one is a 410 to its owner.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, get_owned, shown_id
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.models import AttemptRecord


def attempt_document(record: AttemptRecord, *, with_traceback: bool) -> dict[str, Any]:
    """One attempt; `traceback` (null when the attempt raised nothing) only `with_traceback`."""
    error = record.error
    doc: dict[str, Any] = {
        "attempt": record.attempt,
        "worker_id": record.worker_id,
        "outcome": record.outcome.value,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "duration_ms": record.duration_ms,
        "error": None if error is None else {"type": error.type, "message": error.message},
    }
    if with_traceback:
        doc["traceback"] = None if error is None else error.traceback
    return doc


async def list_attempts(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/requests/{id}/attempts: the request's attempts, oldest first."""
    req = await get_owned(ctx.store, owner, request.path_params["request_id"])
    records = await ctx.store.list_attempts(req.id)
    attempts = [attempt_document(r, with_traceback=owner.is_admin) for r in records]
    body = {"request_id": shown_id(owner, req.id), "attempts": attempts, "count": len(attempts)}
    return json_response(body)
