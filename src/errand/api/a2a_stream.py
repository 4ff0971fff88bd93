"""A request's durable events as an A2A event stream: replayed from the database, then live.

Every event comes from `store.events_since`, never from memory, so a subscriber that drops and
resubscribes with the `errand_resume` of the last event it received (as `Last-Event-ID`) gets
every later event exactly once (even when it dropped between the result's last chunk and the
`completed` status, which come from one errand event), whichever process it reconnects to. Waiting is on the
store's change notifications (`store.wait_for_change`), as `GET /v1/requests/{id}/events` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from errand.api.a2a_mapping import FINAL_STATES, StreamEvent, context_of, is_final, stream_events, to_task
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


Position = tuple[int, int]
"""Where a subscriber is: (seq, n): every event before `seq` and the first n A2A events of
event `seq` received (n = 0: all of them)."""


def resume_position(headers: Mapping[str, str]) -> Position | None:
    """Where a resubscribing client is (`Last-Event-ID`: an event's `errand_resume`, `<seq>` or
    `<seq>.<n>`), or None (not sent)."""
    value = headers.get(RESUME_HEADER)
    if value is None or not value.strip():
        return None
    seq, dot, part = value.strip().partition(".")
    if not (_digits(seq) and (not dot or _digits(part))):
        raise InvalidRequest(
            "Last-Event-ID must be the errand_resume (`<seq>` or `<seq>.<n>`) of a received event",
            details={"field": "Last-Event-ID"},
        )
    return int(seq), int(part or 0)


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= MAX_SEQ_DIGITS


async def task_stream(store: Store, req: Request, after: Position) -> AsyncIterator[StreamEvent]:
    """The task as it is now, then every A2A event after position `after`, until the task
    reaches a state that ends a stream (terminal or input-required)."""
    snapshot = to_task(req)
    yield snapshot
    after_seq, seen = after
    if snapshot.status.state in FINAL_STATES and req.seq <= after_seq and not seen:
        return  # it stopped (ended, or waits for an answer) and the subscriber has seen it
    task_id, context_id = public_id(req.id), context_of(req)
    pos = after_seq - 1 if seen else after_seq
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
            items = stream_events(event, task_id, context_id, result_text)
            for item in items[seen:] if event.seq == after_seq else items:
                yield item
                if is_final(item):
                    return
