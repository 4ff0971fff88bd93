"""A small, strict Server-Sent Events reader for the tests (what EventSource does, minus reconnects).

`read_events(client, url)` streams a response over real HTTP and returns every message
(`id`, `event`, parsed JSON `data`), every comment line (keepalives), the response headers, and
whether the server closed the stream itself. `stop_after=n` disconnects after n messages, as
a client that goes away mid-stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Message:
    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Received:
    status: int
    headers: httpx.Headers
    messages: list[Message] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    closed_by_server: bool = False

    @property
    def types(self) -> list[str]:
        return [m.event for m in self.messages]

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.messages]

    def of(self, event: str) -> list[Message]:
        return [m for m in self.messages if m.event == event]


class Parser:
    """Feed it lines; it returns a Message at each blank line that ends one, a str per comment."""

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def feed(self, line: str) -> Message | str | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return line[1:].strip()
        name, _, value = line.partition(":")
        self._fields.setdefault(name, []).append(value.removeprefix(" "))
        return None

    def _dispatch(self) -> Message | None:
        fields, self._fields = self._fields, {}
        if not fields:
            return None
        assert set(fields) <= {"id", "event", "data"}, f"unexpected SSE fields {sorted(fields)}"
        assert len(fields["id"]) == 1 and len(fields["event"]) == 1 and len(fields["data"]) == 1, fields
        return Message(int(fields["id"][0]), fields["event"][0], json.loads(fields["data"][0]))


def _take(received: Received, item: Message | str | None) -> bool:
    """Record a parsed item; True when it was a message."""
    if isinstance(item, Message):
        received.messages.append(item)
        return True
    if isinstance(item, str):
        received.comments.append(item)
    return False


def read_events(
    client: httpx.Client,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    stop_after: int | None = None,
    stop_after_comments: int | None = None,
    timeout: float = 15.0,
) -> Received:
    """Read an event stream until the server closes it (or `stop_after` messages/comments)."""
    parser = Parser()
    with client.stream(method, url, headers=headers, json=json_body, timeout=timeout) as r:
        received = Received(r.status_code, r.headers)
        if r.status_code != 200:
            r.read()
            received.comments.append(r.text)
            return received
        for line in r.iter_lines():
            _take(received, parser.feed(line))
            if stop_after is not None and len(received.messages) >= stop_after:
                return received
            if stop_after_comments is not None and len(received.comments) >= stop_after_comments:
                return received
        received.closed_by_server = True
    return received


async def aread_events(client: httpx.AsyncClient, url: str) -> Received:
    """The async twin of read_events (to hold many streams open at once), read to the end."""
    parser = Parser()
    async with client.stream("GET", url) as r:
        received = Received(r.status_code, r.headers)
        async for line in r.aiter_lines():
            _take(received, parser.feed(line))
        received.closed_by_server = True
    return received


@contextmanager
def open_stream(
    client: httpx.Client, url: str, *, headers: dict[str, str] | None = None, timeout: float = 15.0
) -> Iterator[Iterator[Message | str]]:
    """An open stream as an iterator of messages and comments, for tests that act between them."""
    with client.stream("GET", url, headers=headers, timeout=timeout) as r:
        assert r.status_code == 200, r.read().decode()
        parser = Parser()

        def items() -> Iterator[Message | str]:
            for line in r.iter_lines():
                item = parser.feed(line)
                if item is not None:
                    yield item

        yield items()


def next_message(items: Iterator[Message | str]) -> Message:
    """The next message, skipping comments (keepalives)."""
    for item in items:
        if isinstance(item, Message):
            return item
    raise AssertionError("the stream ended")
