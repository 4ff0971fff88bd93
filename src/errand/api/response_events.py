"""errand's event log of a Response -> OpenAI's Responses streaming events. Pure (no I/O).

The OpenAI events are a function of the durable log alone: `StreamMapper` is fed the request's
events from seq 1 in order and numbers what it produces 0, 1, 2... So the same log always gives
the same events with the same `sequence_number`s, and a stream resumed with `starting_after=N`
(the mapper replays the log from its start and skips numbers <= N) neither loses nor repeats
an event, whichever process serves it. Snapshots inside events are built from the stored
request's fixed fields and the log, never from its current state, for the same reason.

  created               -> response.created (queued)
  first started         -> response.in_progress
  first content         -> response.output_item.added, response.content_part.added, then
  each content          -> response.output_text.delta
  a later attempt       -> its content streams on only past what was already sent, and only
                           while it agrees with it (a re-run repeats nothing; one that
                           diverges sends no more deltas, and `done` carries the result)
  completed             -> (a last delta with the rest of the result text when the deltas are a
                           prefix of it), response.output_text.done, content_part.done,
                           output_item.done, response.completed (with output and usage)
  failed | cancelled    -> the open item closed as incomplete, then response.failed | cancelled
Other events (progress, retry, routed, tool steps) have no OpenAI counterpart and map to nothing.
"""

from __future__ import annotations

from typing import Any

import orjson

from errand.api.response_objects import (
    STATUS,
    Outcome,
    error_of,
    message_id,
    message_item,
    output_text,
    response_object,
    usage_of,
)
from errand.models import Event, Request, Status

TERMINAL = {
    Status.COMPLETED.value: "response.completed",
    Status.FAILED.value: "response.failed",
    Status.CANCELLED.value: "response.cancelled",
}


class StreamMapper:
    """Turns one request's errand events, fed in log order, into numbered OpenAI events."""

    def __init__(self, req: Request) -> None:
        self._req = req
        self._next = 0
        self._started = False
        self._item_open = False
        self._sent = ""
        """The text the deltas so far add up to."""
        self._attempt_text = ""
        """The text the running attempt has produced (a retry or takeover starts again)."""
        self.done = False
        """True once the terminal event is mapped: the stream ends there."""

    def feed(self, event: Event) -> list[dict[str, Any]]:
        """The OpenAI events this errand event produces (maybe none), numbered."""
        out: list[dict[str, Any]] = []
        if self.done:
            return out
        if event.type == "created":
            out.append(self._snapshot("response.created", Outcome(STATUS[Status.PENDING])))
        elif event.type == "started":
            self._attempt_text = ""
            if not self._started:
                self._started = True
                out.append(self._snapshot("response.in_progress", Outcome(STATUS[Status.PROCESSING])))
        elif event.type == "content" and isinstance(event.data.get("text"), str):
            self._attempt_text += event.data["text"]
            out += self._catch_up(self._attempt_text)
        elif event.type in TERMINAL:
            out += self._terminal(event)
        return [self._number(e) for e in out]

    def _number(self, event: dict[str, Any]) -> dict[str, Any]:
        event["sequence_number"] = self._next
        self._next += 1
        return event

    def _snapshot(self, type: str, outcome: Outcome) -> dict[str, Any]:
        return {"type": type, "response": response_object(self._req, outcome)}

    def _where(self) -> dict[str, Any]:
        return {"item_id": message_id(self._req.id), "output_index": 0, "content_index": 0}

    def _open(self) -> list[dict[str, Any]]:
        if self._item_open:
            return []
        self._item_open = True
        item = message_item(self._req.id, "", "in_progress")
        return [
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.content_part.added", **self._where(), "part": output_text("")},
        ]

    def _catch_up(self, text: str) -> list[dict[str, Any]]:
        """The delta that takes the sent text to `text`, when `text` extends it."""
        if len(text) <= len(self._sent) or not text.startswith(self._sent):
            return []
        text = text[len(self._sent) :]
        self._sent += text
        return [
            *self._open(),
            {"type": "response.output_text.delta", **self._where(), "delta": text, "logprobs": []},
        ]

    def _close(self, text: str, status: str) -> list[dict[str, Any]]:
        return [
            {"type": "response.output_text.done", **self._where(), "text": text, "logprobs": []},
            {"type": "response.content_part.done", **self._where(), "part": output_text(text)},
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": message_item(self._req.id, text, status),
            },
        ]

    def _terminal(self, event: Event) -> list[dict[str, Any]]:
        self.done = True
        so_far = self._sent
        if event.type != Status.COMPLETED.value:
            closed = self._close(so_far, "incomplete") if self._item_open else []
            error = error_of(event.data.get("error")) if event.type == Status.FAILED.value else None
            outcome = Outcome(event.type, None, error, None, event.at)
            return [*closed, self._snapshot(TERMINAL[event.type], outcome)]
        result = event.data.get("result") or {}
        text = str(result.get("text", ""))
        out: list[dict[str, Any]] = []
        out += self._catch_up(text)
        out += self._open()
        out += self._close(text, "completed")
        outcome = Outcome(event.type, text, None, usage_of(result.get("usage")), event.at)
        out.append(self._snapshot(TERMINAL[event.type], outcome))
        return out


def encode(event: dict[str, Any]) -> bytes:
    """One SSE message as OpenAI sends it: `event: <type>` and `data: <json>`."""
    return b"event: %s\ndata: %s\n\n" % (event["type"].encode(), orjson.dumps(event))
