"""POST /v1/requests/{id}/input: answer the question a paused request waits on.

The request must be the caller's (the ownership rule of every read and of cancel, `auth.owns`:
another client's request is a 404; an admin, the operator at the console, answers any request; a
viewer reads the question but its answer is 403, refused in `session_auth.authenticate`). The
value is checked against the question's JSON Schema (422 naming the failing path); the store
then keeps it and makes the request pending again, to be resumed by a worker
(`Store.answer_input`). Idempotent per input id: the same value again is a 202 with nothing
changed; another value is 409 INPUT_ALREADY_ANSWERED; an id that is not the outstanding question
(never asked, the request resumed, ended or was cancelled) is 409 INPUT_NOT_OUTSTANDING.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, get_owned, shown_id
from errand.api.body import invalid_from, parse_object, read_body
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.models import InputAsk, Status
from errand.store.input_rules import check_value

log = logging.getLogger("errand.api")


class InputBody(BaseModel):
    """POST /v1/requests/{id}/input: the answer `value` (any JSON) to the question `input_id`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    input_id: str = Field(min_length=1, max_length=128)
    value: Any = Field(description="The answer: any JSON value the question's schema accepts.")


_FIELDS = list(InputBody.model_fields)


def _outstanding(status: Status, ask: InputAsk | None, input_id: str) -> InputAsk | None:
    return ask if status is Status.INPUT_REQUIRED and ask is not None and ask.id == input_id else None


async def answer_input(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/requests/{id}/input -> 202 {request_id, input_id, status}."""
    req = await get_owned(ctx.store, owner, request.path_params["request_id"])
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    try:
        body = InputBody.model_validate(parse_object(raw, ctx.config.server.max_json_depth))
    except ValidationError as exc:
        raise invalid_from(exc, _FIELDS) from None
    ask = _outstanding(req.status, req.input_request, body.input_id)
    if ask is not None and ask.schema is not None:
        check_value(ask.schema, body.value)
    resumed, changed = await ctx.store.answer_input(req.id, body.input_id, body.value)
    if changed:
        log.info(
            "request %s got input %s (answered with the %s key); it resumes",
            req.id,
            body.input_id,
            owner.role,
            extra={"request_id": req.id},
        )
    shown = shown_id(owner, req.id)
    return json_response(
        {"request_id": shown, "input_id": body.input_id, "status": resumed.status.value, "accepted": changed},
        202,
    )
