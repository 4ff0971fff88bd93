"""Following a request's event stream (SSE) with resume: the pure part both twins share.

`GET /v1/requests/{id}/events` replays the request's log, then follows it live and closes after
the terminal event. Every message carries the event's sequence number as its id, so a client
whose connection drops asks again with `Last-Event-ID: <last id seen>` and gets exactly the
events after it: nothing lost, nothing repeated. `StreamPlan` keeps that id, decides whether a
stream that ended is finished or dropped, and how long to wait before reconnecting
(`errand.backoff`); after `reconnects` drops in a row without a new event it gives up with
ServiceUnavailable (transient). An error answer (404, 401, 410...) ends the stream at once, but
a 503 is a drop like any other. With `follow=False` the server sends only the events so far
(`?follow=false`) and closes: that clean end is the end. A followed stream that closes cleanly
without its terminal event is checked against the request once: if it has ended, what is left
of its log is fetched as a replay (an `after` at or past the end yields nothing, at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from httpx_sse import ServerSentEvent

from errand.backoff import Backoff
from errand.errors import ErrandError, ServiceUnavailable
from errand.models import TERMINAL

__all__ = ["DEFAULT_RECONNECTS", "RECONNECT_BACKOFF", "StreamEvent", "StreamPlan"]

DEFAULT_RECONNECTS: Final = 5
"""Drops in a row (no event received between them) before `events()` gives up."""
RECONNECT_BACKOFF: Final = Backoff(initial=0.25, maximum=5.0)
"""The wait before reconnect number n: 0.25 s, 0.5 s, 1 s ... at most 5 s, jittered."""
TERMINAL_TYPES: Final = frozenset(status.value for status in TERMINAL)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of a request's log: `id` is its sequence number (1, 2, 3 ...), `type` one of
    created, started, routed, progress, content, tool_call, retry, completed, failed, cancelled;
    a terminal event's `data` is the status document."""

    id: int
    type: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """True for the last event of a request (completed, failed, cancelled)."""
        return self.type in TERMINAL_TYPES

    @classmethod
    def from_sse(cls, sse: ServerSentEvent) -> StreamEvent:
        data = json.loads(sse.data) if sse.data else {}
        return cls(
            int(sse.id), sse.event, MappingProxyType(data if isinstance(data, dict) else {"value": data})
        )


class StreamPlan:
    """Where a stream resumes and whether to reconnect; one per `events()` call."""

    def __init__(
        self, request_id: str, after: int | None, reconnects: int, backoff: Backoff, *, follow: bool = True
    ) -> None:
        if reconnects < 0:
            raise ValueError("reconnects must be >= 0")
        self.request_id = request_id
        self.follow = follow
        self.last = after
        self.reconnects = reconnects
        self.backoff = backoff
        self.drops = 0
        self.done = False

    def headers(self) -> dict[str, str]:
        """The request headers: Accept, and Last-Event-ID once an event was seen (or `after`)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last is not None:
            headers["Last-Event-ID"] = str(self.last)
        return headers

    def accept(self, sse: ServerSentEvent) -> StreamEvent | None:
        """The event to hand out (None for one already seen, or a message without an id)."""
        if not sse.id:
            return None
        event = StreamEvent.from_sse(sse)
        if self.last is not None and event.id <= self.last:
            return None
        self.last = event.id
        self.drops = 0
        self.done = event.is_terminal
        return event

    def finished(self, cause: BaseException | None) -> bool:
        """Whether the stream that just ended is the whole answer: its terminal event came, or
        (not following) the server closed the replay cleanly."""
        return self.done or (cause is None and not self.follow)

    def needs_check(self, cause: BaseException | None) -> bool:
        """A followed stream closed cleanly before its terminal event: the request may have
        ended where this stream cannot show it (an `after` past the end). The caller reads the
        request once, and if it ended calls `ended()`, instead of reconnecting blindly."""
        return cause is None and self.follow and not self.done

    def ended(self) -> None:
        """The request is terminal: fetch what is left of its log as a replay, which ends."""
        self.follow = False

    def dropped(self, cause: BaseException | None) -> float:
        """The stream ended before its terminal event: seconds to wait before resuming, or the
        error to give up with. An errand error other than ServiceUnavailable is final."""
        if isinstance(cause, ErrandError) and not isinstance(cause, ServiceUnavailable):
            raise cause
        self.drops += 1
        if self.drops > self.reconnects:
            why = f": {cause}" if cause is not None else ""
            raise ServiceUnavailable(
                f"the event stream of {self.request_id} dropped {self.drops} times in a row "
                f"(last event id {self.last}){why}"
            ) from cause
        return self.backoff.delay(self.drops)
