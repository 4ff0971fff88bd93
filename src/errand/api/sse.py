"""GET /v1/requests/{id}/events: a request's event log as Server-Sent Events, replayed then live.

The store's per-request event log (gapless `seq` 1, 2, 3...) is the stream: every message is
`id: <seq>`, `event: <type>`, `data: <json>`, so a client that reconnects with `Last-Event-ID`
(the header EventSource sends by itself; or `?last_event_id=`) gets exactly the events after
the last one it saw -- nothing lost, nothing repeated. The stream replays from the start (or
from that id), then follows the request live and closes after its terminal event
(`completed`, `failed` or `cancelled`, whose data is the status document).

Nothing here needs a worker in this process: the stream reads `store.events_since` and sleeps
in `store.wait_for_change`, which PostgreSQL wakes by NOTIFY and SQLite by in-process wake-ups
or polling, so an API-only process streams work done elsewhere. A stream silent for
`server.sse_heartbeat_seconds` gets a `: keepalive` comment, so proxies keep it open; the
headers ask them not to buffer or cache. A client that goes away ends its stream at once: the
response listens for the disconnect while it streams, instead of noticing at the next write.

Followers of one request in this process share one reader (`Feed`): it reads each event from
the store once and keeps the encoded frames, so 200 clients on one request cost one
`events_since` per change rather than 200 (the log of one request is small: content deltas
are merged when written).

`POST /v1/chat` with `stream: true` answers with the same stream for the request it created
(see `chat_stream`): the first event, `created`, carries the request id, as does the
`X-Request-Id` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from errand.api.auth import Owner, get_owned
from errand.api.context import ApiContext, request_url
from errand.errors import ErrandError, InvalidRequest
from errand.metrics import SSE_STREAMS
from errand.models import TERMINAL, Event
from errand.models import Request as StoredRequest
from errand.request_ids import public_id
from errand.store.base import Store

__all__ = [
    "Feed",
    "chat_stream",
    "encode_event",
    "follow",
    "parse_follow",
    "parse_last_event_id",
    "request_events",
]

log = logging.getLogger("errand.api")

TERMINAL_EVENTS = frozenset(status.value for status in TERMINAL)
BATCH = 500
"""Events read (and written to the client) per store call while replaying a long log."""
KEEPALIVE = b": keepalive\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""no-cache: a replay is never served stale; X-Accel-Buffering: nginx passes events at once."""
MAX_ID_DIGITS = 18
FOLLOW_VALUES = {"true": True, "1": True, "false": False, "0": False}
READER_WAIT = 30.0
"""A feed's reader re-checks the log at least this often (followers keep their own heartbeat)."""


async def request_events(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/requests/{id}/events: the owner's (or an admin's) request; others get 404."""
    after = parse_last_event_id(request)
    live = parse_follow(request)
    req = await get_owned(ctx.store, owner, request.path_params["request_id"])
    if request.method == "HEAD":  # the headers only: a stream would hold the call to the end
        return Response(headers=HEADERS, media_type=EventStreamResponse.media_type)
    return _stream(ctx, req, after, {}, until=None if live else req.seq)


def chat_stream(request: Request, req: StoredRequest, ctx: ApiContext) -> Response:
    """The answer to POST /v1/chat with `stream: true`: the new request's stream from its
    first event, with its id in `X-Request-Id` and its status URL in `Location`."""
    shown = public_id(req.id)
    headers = {"X-Request-Id": shown, "Location": request_url(request, shown)}
    return _stream(ctx, req, 0, headers)


def _stream(
    ctx: ApiContext, req: StoredRequest, after: int, headers: Mapping[str, str], *, until: int | None = None
) -> Response:
    # An id beyond the log (not one we sent) resumes from its end rather than waiting forever
    # for a seq that will not come: a 4xx would make EventSource give up for good.
    after = min(after, req.seq)
    frames = follow(feed_for(ctx, req.id), after, ctx.config.server.sse_heartbeat_seconds, until)
    return EventStreamResponse(frames, headers={**HEADERS, **headers})


class Feed:
    """One request's events as this process has read them, shared by every follower here.

    A single reader task reads the log from seq 1 and waits on `store.wait_for_change`; each
    batch is appended (events[i] has seq i + 1: the log is gapless) with its encoded frame, and
    followers are woken. The reader stops at the terminal event, on a store error (followers end
    their streams; clients resume with Last-Event-ID), or when the last follower leaves."""

    def __init__(self, store: Store, request_id: str, on_idle: Callable[[], None]) -> None:
        self.request_id = request_id
        self.frames: list[tuple[bytes, bool]] = []
        """(encoded message, is terminal) for seq 1, 2, 3..."""
        self.done = False
        self.changed = asyncio.Event()
        self.followers = 0
        self._store = store
        self._on_idle = on_idle
        self._task = asyncio.get_running_loop().create_task(self._read(), name=f"errand-feed-{request_id}")

    def join(self) -> None:
        self.followers += 1

    def leave(self) -> None:
        self.followers -= 1
        if self.followers <= 0:
            self._task.cancel()
            self._on_idle()

    def _publish(self) -> None:
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()

    async def _read(self) -> None:
        seq, look = 0, True
        try:
            while True:
                events = await self._store.events_since(self.request_id, seq, BATCH)
                if events:
                    seq = events[-1].seq
                    self.frames.extend((encode_event(e), e.type in TERMINAL_EVENTS) for e in events)
                    self._publish()
                    if events[-1].type in TERMINAL_EVENTS:
                        return
                    if len(events) == BATCH:
                        continue
                elif look and (await self._store.get(self.request_id)).is_terminal:
                    return
                look = await self._store.wait_for_change(self.request_id, seq, READER_WAIT)
        except ErrandError as exc:  # e.g. RequestExpired (purged), StoreUnavailable
            log.info("event stream of %s ended early: %s", self.request_id, exc.message)
        finally:
            self.done = True
            self._publish()


def feed_for(ctx: ApiContext, request_id: str) -> Feed:
    """This process's feed of the request, started by its first follower."""
    feed = ctx.feeds.get(request_id)
    if feed is None or (feed.done and not (feed.frames and feed.frames[-1][1])):  # new, or failed
        feed = Feed(ctx.store, request_id, lambda: _drop(ctx, request_id, feed))
        ctx.feeds[request_id] = feed
    return feed


def _drop(ctx: ApiContext, request_id: str, feed: Feed | None) -> None:
    if ctx.feeds.get(request_id) is feed:
        del ctx.feeds[request_id]


async def follow(
    feed: Feed, after_seq: int, heartbeat: float, until: int | None = None
) -> AsyncIterator[bytes]:
    """The stream's bytes: the feed's frames after `after_seq` in order, keepalives in
    silences, until the terminal event (or the feed ends, or event `until` was sent: the
    `?follow=false` replay of what had happened when it was asked)."""
    feed.join()
    pos = after_seq
    try:
        while until is None or pos < until:
            if pos < len(feed.frames):
                end = pos + BATCH if until is None else min(pos + BATCH, until)
                chunk = feed.frames[pos:end]
                pos += len(chunk)
                yield b"".join(frame for frame, _ in chunk)
                if chunk[-1][1]:
                    return
                continue
            if feed.done:
                return
            try:
                await asyncio.wait_for(feed.changed.wait(), heartbeat)
            except TimeoutError:
                yield KEEPALIVE
    finally:
        feed.leave()


def parse_follow(request: Request) -> bool:
    """`?follow=false` (or 0): only the events so far, then the stream closes; else it follows."""
    value = request.query_params.get("follow", "true").strip().lower()
    if value not in FOLLOW_VALUES:
        raise InvalidRequest("follow must be true or false", details={"field": "follow"})
    return FOLLOW_VALUES[value]


def parse_last_event_id(request: Request) -> int:
    """The seq to resume after: the `Last-Event-ID` header (what EventSource sends when it
    reconnects), else `?last_event_id=`, else 0 (from the start)."""
    header = request.headers.get("last-event-id")
    value = header if header is not None else request.query_params.get("last_event_id")
    if value is None or value.strip() == "":
        return 0
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS):
        field = "Last-Event-ID" if header is not None else "last_event_id"
        raise InvalidRequest(
            f"{field} must be the id (a non-negative integer) of an event of this stream",
            details={"field": field},
        )
    return int(value)


def encode_event(event: Event) -> bytes:
    """One SSE message. `created` also names the request (the first event of a chat stream)."""
    data = event.data
    if event.type == "created":
        data = {**data, "request_id": event.request_id}
    kind = event.type
    if "\n" in kind or "\r" in kind:  # an agent-chosen type must not break the framing
        kind = kind.replace("\r", " ").replace("\n", " ")
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, kind.encode(), orjson.dumps(data))


class EventStreamResponse(StreamingResponse):
    """A text/event-stream response that stops streaming as soon as the client disconnects.

    Starlette notices a disconnect only at the next write under ASGI spec >= 2.4; a live
    stream may be silent for a heartbeat period, so this one always listens for it."""

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SSE_STREAMS.inc()
        streaming = asyncio.ensure_future(self._send_all(send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({streaming, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, listening):
                task.cancel()
            await asyncio.gather(streaming, listening, return_exceptions=True)
            SSE_STREAMS.dec()

    async def _send_all(self, send: Send) -> None:
        try:
            await self.stream_response(send)
        except OSError:
            pass  # the client went away mid-write
        except Exception:
            log.exception("event stream failed")
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(close())
