"""An A2A message naming a task (`message.taskId`): the answer to that task's question.

A2A continues an input-required task with a message that carries its `taskId` (and
`contextId`); in errand that message is the answer to the request's outstanding `ctx.ask`, kept
by the same `Store.answer_input` and checked by the same schema rule (`input_rules.check_value`) as
POST /v1/requests/{id}/input. The value is the message's data part (any JSON) or, without one,
its text. A retried send of the same `messageId` answers nothing again: the store keeps the
message id with the answer (`Request.input_messages`), and the task is returned as it is.
Any other task state refuses the message as a2a-sdk's own handler does (UnsupportedOperation);
another caller's task, like an unknown one, is "not found".
"""

from __future__ import annotations

import logging
from typing import Any

from a2a.types.a2a_pb2 import Message
from a2a.utils.errors import UnsupportedOperationError
from google.protobuf.json_format import MessageToDict

from errand.api.a2a_mapping import context_of, message_text
from errand.api.auth import Owner, get_owned
from errand.api.context import ApiContext
from errand.errors import InvalidRequest
from errand.models import InputAsk, Status
from errand.models import Request as StoredRequest
from errand.store.input_rules import check_value

log = logging.getLogger("errand.api")


async def answer_task(ctx: ApiContext, owner: Owner, message: Message) -> StoredRequest:
    """The caller's task named by the message, resumed by its answer (or as it is now, for a
    retried message that answered it already)."""
    req = await get_owned(ctx.store, owner, message.task_id)
    if message.context_id and message.context_id != context_of(req):
        raise InvalidRequest(
            f"contextId {message.context_id!r} is not the context of task {message.task_id!r}",
            details={"field": "message.contextId"},
        )
    if message.message_id and message.message_id in req.input_messages:
        return req  # a retried send: its answer is kept already
    ask = _outstanding(req, message.task_id)
    value = answer_value(message)
    if ask.schema is not None:
        try:
            check_value(ask.schema, value)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"the answer does not fit the schema of input {ask.id!r}: {exc.message}", details=exc.details
            ) from None
    resumed, changed = await ctx.store.answer_input(req.id, ask.id, value, message.message_id or None)
    if changed:
        log.info("request %s got input %s over A2A; it resumes", req.id, ask.id, extra={"request_id": req.id})
    return resumed


def _outstanding(req: StoredRequest, task_id: str) -> InputAsk:
    """The question the task waits on; UnsupportedOperation (as a2a-sdk) when it waits on none."""
    if req.status is Status.INPUT_REQUIRED and req.input_request is not None:
        return req.input_request
    if req.is_terminal:
        hint = "send a new message with its contextId"
    else:
        hint = (
            "only an input-required task takes a message; wait for it, or send a new one with its contextId"
        )
    raise UnsupportedOperationError(f"task {task_id} is {req.status.value}; {hint}")


def answer_value(message: Message) -> Any:
    """The answer a message carries: its first data part as JSON, else its text parts."""
    for part in message.parts:
        if part.HasField("data"):
            return MessageToDict(part.data)
    text = message_text(message)
    if not text:
        raise InvalidRequest(
            "the answer needs a text part or a data part (JSON, for a question with a schema)",
            details={"field": "message.parts"},
        )
    return text
