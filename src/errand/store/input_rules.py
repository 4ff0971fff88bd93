"""The rules of questions and answers both backends share (`input_required`). Pure: no I/O.

A running attempt asks (`Store.ask_input`): the request waits, with no lease, until an answer
(`answer_input`) makes it pending again, or its deadline (`expire_inputs`) ends it by the ask's
`on_timeout`. Answers are idempotent per input id: the same value again changes nothing, another
value is refused, and an answer to anything but the outstanding question is refused. An answer
must fit the question's schema (`check_value`: POST /v1/requests/{id}/input and A2A alike).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson

from errand.errors import InputAlreadyAnswered, InputNotOutstanding, InvalidRequest
from errand.models import INPUT_TIMEOUT, ON_TIMEOUT, ErrorInfo, InputAsk, Request, Status
from errand.request_ids import public_id

ASK_SOURCES = (Status.PROCESSING.value,)
"""The status a request asks from (its attempt running, fenced by `rules.held`)."""


def check_ask(ask: InputAsk) -> None:
    """InvalidRequest for an ask no expiry could end as asked."""
    if ask.on_timeout not in ON_TIMEOUT:
        raise InvalidRequest(f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, not {ask.on_timeout!r}")


def asked_data(ask: InputAsk) -> dict[str, Any]:
    """Data of the `input_required` event."""
    return {"status": Status.INPUT_REQUIRED.value, "input_request": ask.public()}


def received_data(input_id: str) -> dict[str, Any]:
    """Data of the `input_received` event (the value is not repeated in the event log)."""
    return {"status": Status.PENDING.value, "input_id": input_id}


def check_value(schema: dict[str, Any], value: Any) -> None:
    """InvalidRequest (422 over HTTP, InvalidParams over A2A) naming the JSON path of the first
    part of `value` the schema refuses."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    raise InvalidRequest(
        f"value{path[1:]}: {error.message}"[:500],
        details=[
            {"field": f"value{path[1:]}", "path": path, "message": error.message[:300], "type": "schema"}
        ],
    )


def same_value(a: Any, b: Any) -> bool:
    """Equal as JSON (key order ignored, 1 and 1.0 alike as JSON numbers compare)."""
    return bool(orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS))


def needs_answer(req: Request, input_id: str, value: Any) -> bool:
    """True: `value` answers the outstanding question now. False: that id was answered with
    this value already (a repeated POST: nothing to do). InputAlreadyAnswered: answered with
    another value. InputNotOutstanding: no such question is waiting."""
    if input_id in req.inputs:
        if same_value(req.inputs[input_id], value):
            return False
        raise InputAlreadyAnswered(
            f"input {input_id!r} of request {public_id(req.id)!r} was already answered with another value",
            details={"request_id": public_id(req.id), "input_id": input_id},
        )
    ask = req.input_request
    if req.status is not Status.INPUT_REQUIRED or ask is None or ask.id != input_id:
        raise InputNotOutstanding(
            f"request {public_id(req.id)!r} is not waiting for input {input_id!r}",
            details={
                "request_id": public_id(req.id),
                "input_id": input_id,
                "status": req.status.value,
                "outstanding": ask.id if ask is not None and req.status is Status.INPUT_REQUIRED else None,
            },
        )
    return True


def answers_with(req: Request, input_id: str, value: Any, message_id: str | None) -> list[dict[str, Any]]:
    """The stored answers list after this one (ask order); an answer sent as a protocol message
    keeps that message's id (`Request.input_messages`)."""
    by_input = {k: m for m, k in req.input_messages.items()}
    answers = [{"id": k, "value": v, "message_id": by_input.get(k)} for k, v in req.inputs.items()]
    answers.append({"id": input_id, "value": value, "message_id": message_id})
    return [{k: v for k, v in a.items() if k != "message_id" or v is not None} for a in answers]


def expiry_end(ask: InputAsk) -> tuple[Status, ErrorInfo]:
    """How an unanswered question's expiry ends its request: failed (INPUT_TIMEOUT) or cancelled."""
    error = ErrorInfo(INPUT_TIMEOUT, f"no answer to input {ask.id!r} before it expired", retryable=False)
    return (Status.CANCELLED if ask.on_timeout == "cancel" else Status.FAILED), error
