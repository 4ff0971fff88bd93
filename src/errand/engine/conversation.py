"""The conversation an attempt gives its agent (`ctx.messages`, errand/conversation.py), with the
answers of earlier turns that were still running when this turn was submitted.

A `previous_response_id` chain's turns share a session, so they run in order: by the time a turn
runs, the turns before it have ended, and their answers are read from the store here (one read
each, only for those not known at submit). A turn that failed, was cancelled or is gone adds no
answer.
"""

from __future__ import annotations

from errand import conversation
from errand.errors import NotFound, RequestExpired
from errand.models import Request, Status
from errand.store.base import Store


async def conversation_of(store: Store, req: Request) -> list[dict[str, str]]:
    """The request's conversation, its pending answers read now."""
    answers: dict[str, str] = {}
    for request_id in conversation.pending_answers(req.metadata):
        try:
            earlier = await store.get(request_id)
        except (NotFound, RequestExpired):
            continue
        if earlier.status is Status.COMPLETED and earlier.result is not None:
            answers[request_id] = earlier.result.text
    return conversation.messages_of(req.metadata, req.message, answers)
