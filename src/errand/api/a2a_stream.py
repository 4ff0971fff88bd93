"""A request's durable events as an A2A event stream: replayed from the database, then live.

Every event comes from `store.events_since`, never from memory, so a subscriber that drops and
resubscribes with the seq of the last event it received (`Last-Event-ID`, as SSE clients send
it) gets every later event exactly once, whichever process it reconnects to. Waiting is on the
store's change notifications (`store.wait_for_change`), as `GET /v1/requests/{id}/events` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from errand.api.a2a_mapping import StreamEvent, context_of, is_final, stream_events, to_task
from errand.errors import InvalidRequest
from errand.models import Request
from errand.request_ids import public_id
from errand.store.base import Store

RESUME_HEADER = "last-event-id"
MAX_SEQ_DIGITS = 18
WAIT_SLICE_S = 15.0
"""Longest single wait for a change; the loop re-checks the log after it (a missed wake-up costs
at most this)."""
PAGE = 500


def resume_position(headers: Mapping[str, str]) -> int | None:
    """The seq a resubscribing client already has (`Last-Event-ID`), or None (not sent)."""
    value = headers.get(RESUME_HEADER)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_SEQ_DIGITS):
        raise InvalidRequest(
            "Last-Event-ID must be the errand_seq (a non-negative integer) of a received event",
            details={"field": "Last-Event-ID"},
        )
    return int(value)


async def task_stream(store: Store, req: Request, after_seq: int) -> AsyncIterator[StreamEvent]:
    """The task as it is now, then every A2A event of the events after `after_seq`, until the
    task reaches a state that ends a stream (terminal or input-required)."""
    yield to_task(req)
    if req.is_terminal and req.seq <= after_seq:
        return
    task_id, context_id = public_id(req.id), context_of(req)
    pos = after_seq
    while True:
        events = await store.events_since(req.id, pos, PAGE)
        if not events:
            await store.wait_for_change(req.id, pos, WAIT_SLICE_S)
            continue
        result_text: str | None = None
        if any(e.type == "completed" for e in events):
            done = await store.get(req.id)
            result_text = done.result.text if done.result is not None else None
        for event in events:
            pos = event.seq
            for item in stream_events(event, task_id, context_id, result_text):
                yield item
                if is_final(item):
                    return
