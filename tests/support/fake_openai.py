"""A small, real OpenAI-compatible chat-completions server for tests, scripted reply by reply.

Tests drive errand's LLM agent through the real `openai` client over loopback HTTP, so what is
tested is what runs in production: request building, SSE parsing, status errors, timeouts. The
test queues the replies (`fake.script(Text(...), ToolCalls(...), HttpError(429, ...))`); each
`POST /v1/chat/completions` takes the next one, and every request body and header set is
recorded in `fake.requests`. Nothing is random: ids are counters, chunks are split as told.

    with running_fake_openai() as fake:
        fake.script(Text(["Hel", "lo"]))
        ... ModelConfig(name="fake", base_url=fake.base_url) ...
        assert fake.requests[0].body["stream"] is True

A test usually asks for the `fake` fixture instead: the module's server, reset for the test.

Run alone (`python -m tests.support.fake_openai`, port 8002), it answers every conversation
the same way, unscripted: a user's message gets a call of `--tool` (if given), the tool's result
gets `--answer`, streamed word by word -- enough to try an example agent without a provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.server import ServerThread

__all__ = [
    "Call",
    "FakeOpenAI",
    "HttpError",
    "RecordedRequest",
    "Reply",
    "Slow",
    "StreamError",
    "Text",
    "ToolCalls",
    "running_fake_openai",
]


@dataclass(frozen=True)
class Text:
    """An assistant text answer, streamed in exactly these chunks.

    `chunk_delay` pauses before every chunk after the first piece (a stream that stalls midway).
    """

    chunks: list[str]
    usage: tuple[int, int] | None = (10, 5)
    """(prompt_tokens, completion_tokens), sent in a final chunk if the client asked; None: never."""
    finish_reason: str = "stop"
    chunk_delay: float = 0.0

    @classmethod
    def split(cls, text: str, n: int, **kw: Any) -> Text:
        """`text` cut into n nearly equal chunks."""
        size = -(-len(text) // n)
        return cls([text[i : i + size] for i in range(0, len(text), size)], **kw)


@dataclass(frozen=True)
class Call:
    """One tool call the model asks for; `arguments` is sent verbatim if it is a str."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class ToolCalls:
    """An assistant turn asking for tools; each call's arguments stream in `fragments` pieces."""

    calls: list[Call]
    content: str = ""
    usage: tuple[int, int] | None = (20, 8)
    fragments: int = 3


@dataclass(frozen=True)
class HttpError:
    """An HTTP error answer with an OpenAI-style error body and optional headers (Retry-After)."""

    status: int
    message: str = "scripted error"
    headers: Mapping[str, str] = field(default_factory=dict)
    type: str = "invalid_request_error"
    code: str | None = None


@dataclass(frozen=True)
class StreamError:
    """A 200 stream that sends these content chunks, then an error event (as providers do mid-answer)."""

    chunks: list[str]
    message: str = "The server had an error while processing your request."
    type: str = "server_error"


@dataclass(frozen=True)
class Slow:
    """Wait `delay` seconds before answering anything (headers included), then answer `then`."""

    delay: float
    then: Reply = field(default_factory=lambda: Text(["too late"]))


Reply = Text | ToolCalls | HttpError | StreamError | Slow


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake received: the JSON body and the headers (lower-case names)."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages


class FakeOpenAI:
    """The scripted server's state and its Starlette app; see `running_fake_openai`."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self.fallback: Callable[[dict[str, Any]], Reply] | None = None
        """The answer when nothing is scripted (the standalone server's); None: a 500."""
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def script(self, *replies: Reply) -> None:
        """Queue the next replies, in order; an empty queue answers 500 naming the problem."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        """Forget the script and the recorded requests (one server shared by many tests)."""
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self._seq = 0
            self.fallback = None

    @property
    def pending(self) -> int:
        """Scripted replies not yet used (tests assert 0 to prove every call happened)."""
        with self._lock:
            return len(self._replies)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.requests.append(RecordedRequest(body, {k.lower(): v for k, v in request.headers.items()}))
            reply: Reply | None = self._replies.popleft() if self._replies else None
            if reply is None and self.fallback is not None:
                reply = self.fallback(body)
            self._seq += 1
            seq = self._seq
        if reply is None:
            return _error(HttpError(500, "fake_openai: no scripted reply left", type="server_error"))
        return await self._answer(reply, body, seq)

    async def _answer(self, reply: Reply, body: dict[str, Any], seq: int) -> Response:
        while isinstance(reply, Slow):
            await self._sleep(reply.delay)
            reply = reply.then
        if isinstance(reply, HttpError):
            return _error(reply)
        if isinstance(reply, StreamError):
            model = str(body.get("model", "fake"))
            events = [_chunk(seq, model, {"content": piece}) for piece in reply.chunks]
            events.append(
                {"error": {"message": reply.message, "type": reply.type, "param": None, "code": None}}
            )
            return StreamingResponse(self._sse(events, 0.0), media_type="text/event-stream")
        chunks = _chunks(reply, body, seq)
        if body.get("stream"):
            delay = reply.chunk_delay if isinstance(reply, Text) else 0.0
            return StreamingResponse(self._sse(chunks, delay), media_type="text/event-stream")
        return JSONResponse(_completion(reply, body, seq))

    async def _sse(self, chunks: list[dict[str, Any]], delay: float) -> AsyncIterator[str]:
        for i, chunk in enumerate(chunks):
            if i >= 2 and delay:  # chunk 0 opens the message, chunk 1 is the first piece
                await self._sleep(delay)
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (so no test waits out a slow reply)."""
        await asyncio.to_thread(self._stop.wait, seconds)


def _error(reply: HttpError) -> Response:
    body = {"error": {"message": reply.message, "type": reply.type, "param": None, "code": reply.code}}
    return JSONResponse(body, status_code=reply.status, headers=dict(reply.headers))


def _chunk(seq: int, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{seq}",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


def _call_id(seq: int, index: int) -> str:
    return f"call_{seq}_{index}"


def _tool_call_deltas(reply: ToolCalls, seq: int) -> list[dict[str, Any]]:
    """First the id and name of each call, then its arguments in `fragments` pieces."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(reply.calls):
        head = {"index": index, "id": _call_id(seq, index), "type": "function"}
        deltas.append({**head, "function": {"name": call.name, "arguments": ""}})
        args = call.arguments_json
        size = max(1, -(-len(args) // reply.fragments))
        for start in range(0, len(args), size):
            deltas.append({"index": index, "function": {"arguments": args[start : start + size]}})
    return deltas


def _chunks(reply: Text | ToolCalls, body: dict[str, Any], seq: int) -> list[dict[str, Any]]:
    """The SSE chunks of a reply, as an OpenAI server streams them (usage last, if asked for)."""
    model = str(body.get("model", "fake"))
    out = [_chunk(seq, model, {"role": "assistant", "content": ""})]
    if isinstance(reply, Text):
        out += [_chunk(seq, model, {"content": piece}) for piece in reply.chunks]
    else:
        if reply.content:
            out.append(_chunk(seq, model, {"content": reply.content}))
        out += [_chunk(seq, model, {"tool_calls": [d]}) for d in _tool_call_deltas(reply, seq)]
    finish = reply.finish_reason if isinstance(reply, Text) else "tool_calls"
    out.append(_chunk(seq, model, {}, finish))
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if wants_usage and reply.usage is not None:
        out.append({**_chunk(seq, model, {}), "choices": [], "usage": _usage(reply.usage)})
    return out


def _completion(reply: Text | ToolCalls, body: dict[str, Any], seq: int) -> dict[str, Any]:
    """The same reply as one non-streamed chat.completion object."""
    message: dict[str, Any] = {"role": "assistant"}
    if isinstance(reply, Text):
        message["content"] = "".join(reply.chunks)
        finish = reply.finish_reason
    else:
        message["content"] = reply.content or None
        message["tool_calls"] = [
            {
                "id": _call_id(seq, i),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json},
            }
            for i, c in enumerate(reply.calls)
        ]
        finish = "tool_calls"
    out: dict[str, Any] = {
        "id": f"chatcmpl-fake-{seq}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": str(body.get("model", "fake")),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if reply.usage is not None:
        out["usage"] = _usage(reply.usage)
    return out


@contextmanager
def running_fake_openai() -> Iterator[FakeOpenAI]:
    """Serve a FakeOpenAI in a ServerThread on 127.0.0.1:<free port>; `base_url` ends in /v1."""
    fake = FakeOpenAI()
    server = ServerThread(fake.app, name="fake-openai").start()
    fake.base_url = f"{server.url}/v1"
    try:
        yield fake
    finally:
        fake._stop.set()
        server.stop()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    """One fake provider per test module (registered for every test by tests/conftest.py)."""
    with running_fake_openai() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> FakeOpenAI:
    """The module's fake provider with an empty script and no recorded requests."""
    fake_server.reset()
    return fake_server


def tool_then_answer(
    tool: str | None, arguments: dict[str, Any], answer: str
) -> Callable[[dict[str, Any]], Reply]:
    """The standalone server's rule: a user's turn asks for `tool`, a tool's result gets `answer`."""

    def reply(body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or [{}]
        if tool is not None and body.get("tools") and messages[-1].get("role") == "user":
            return ToolCalls([Call(tool, arguments)])
        words = answer.split(" ")
        return Text([w + " " for w in words[:-1]] + words[-1:], chunk_delay=0.05)

    return reply


def main(argv: list[str] | None = None) -> None:
    """Serve an unscripted fake on 127.0.0.1 until interrupted (see the module docstring)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_openai", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--tool", help="the tool to call first, e.g. get_weather")
    parser.add_argument("--tool-args", default="{}", help='its JSON arguments, e.g. \'{"city": "Paris"}\'')
    parser.add_argument("--answer", default="It is sunny today.")
    args = parser.parse_args(argv)
    fake = FakeOpenAI()
    fake.fallback = tool_then_answer(args.tool, json.loads(args.tool_args), args.answer)
    print(f"fake OpenAI server: OPENAI_BASE_URL=http://127.0.0.1:{args.port}/v1", flush=True)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
