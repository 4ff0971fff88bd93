"""The Agent protocol and the RunContext an agent reports through. Knows no HTTP and no SQL.

The worker builds a RunContext per attempt and binds its `sink` to the store; agents only see
`progress()`, `emit()`, `checkpoint()` and `ask()`. Reports are queued without blocking the agent
(a sync handler calls them from its thread), and written in order by the worker.

Human input (`await ctx.ask(prompt, schema=None, timeout=None)`; plain `ctx.ask(...)` in a sync
handler's thread) resumes by re-running: an ask whose answer is not in `ctx.inputs` raises
`InputRequested`, a control-flow signal (a BaseException, like asyncio's CancelledError, so
`except Exception` in a handler does not swallow it; never an error, never retried). From a
thread it crosses back to the loop as the thread's exception, like any other. The engine stores
the question, the request waits in `input_required` without a worker, and once answered the
handler is called again *from its start* with `ctx.inputs` holding every answer so far (by input
id, in ask order): each `ask` whose answer exists returns it at once, in the order asked. So the
code before an `ask` runs again on every resumption and must be idempotent (or check `ctx.inputs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jsonschema

from errand.agents.threads import ThreadGroup
from errand.clock import new_id
from errand.errors import Cancelled
from errand.models import ON_TIMEOUT, InputAsk, Progress, Result

__all__ = ["Agent", "Cancelled", "InputRequested", "RunContext", "Sink", "coerce_result"]


class InputRequested(BaseException):
    """Raised by `RunContext.ask` when the answer is not there yet: the engine pauses the
    request (input_required) with `ask` as its question and `state` kept for the resumption."""

    def __init__(self, ask: InputAsk, state: Any = None) -> None:
        super().__init__(ask.prompt)
        self.ask, self.state = ask, state


Sink = Callable[[str, dict[str, Any], Progress | None], None]
"""(event type, data, progress or None) -> None; must be safe to call from any thread."""


@dataclass
class RunContext:
    """What a running agent can see and do."""

    request_id: str
    user_id: str
    session_id: str | None
    metadata: dict[str, Any]
    attempt: int
    agent_id: str
    sink: Sink = field(repr=False, default=lambda t, d, p: None)
    cancel_event: asyncio.Event = field(repr=False, default_factory=asyncio.Event)
    threads: ThreadGroup = field(repr=False, default_factory=ThreadGroup)
    """Where this attempt's sync handler and tools run (the worker's pool; agents/threads.py)."""
    inputs: dict[str, Any] = field(default_factory=dict)
    """Answers to this request's questions so far, by input id, in ask order (see `ask`)."""
    input_state: Any = None
    """What the agent kept when it asked (`ask(state=...)`), given back on resumption."""
    messages: list[dict[str, str]] = field(default_factory=list)
    """The conversation the request carries, `{"role", "content"}` each, oldest first, the
    message the agent runs on included (errand/conversation.py): for POST /v1/responses the
    `instructions` (as a system message), the earlier turns of a `previous_response_id` chain and
    every input message; for a chat request the one user message. Empty outside a worker."""
    now: Callable[[], float] = field(repr=False, default=lambda: 0.0)
    """The engine's clock (an ask's expiry is now + timeout)."""
    _asked: int = field(default=0, repr=False)

    def progress(
        self,
        percent: float | None = None,
        message: str | None = None,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        """Report progress; shows in GET /v1/requests/{id} and the event stream."""
        if percent is not None:
            percent = round(max(0.0, min(100.0, float(percent))), 2)
        prog = Progress(percent, message, step, total_steps)
        self.sink("progress", prog.to_dict(), prog)

    def emit(self, text: str) -> None:
        """Report a content delta (e.g. a streamed model token)."""
        self.sink("content", {"text": text}, None)

    def event(self, type: str, data: dict[str, Any]) -> None:
        """Report another event (tool calls, steps)."""
        self.sink(type, data, None)

    def ask(
        self,
        prompt: str,
        schema: dict[str, Any] | None = None,
        timeout: float | None = None,
        *,
        on_timeout: str = "fail",
        state: Any = None,
    ) -> Any:
        """Ask a person; the answer (validated against `schema`, a JSON Schema). An async
        handler awaits it (`await ctx.ask(...)`); a sync handler, in its thread (where no event
        loop runs), calls it plainly (`ctx.ask(...)` returns the answer).

        The n-th ask of a run returns the n-th answer of `ctx.inputs` at once; past the answers
        it raises InputRequested: the request waits in `input_required` (no worker held) until
        answered, then this handler runs again from its start. `timeout` seconds unanswered end
        the request by `on_timeout`: "fail" (error InputTimeout) or "cancel". `state` is kept
        and handed back as `ctx.input_state` on the resumption (the LLM agent keeps its
        conversation there). Nothing here waits: the answer is there, or the attempt ends."""
        answer = self._answer(prompt, schema, timeout, on_timeout, state)
        return _ready(answer) if _on_a_loop() else answer

    def _answer(
        self, prompt: str, schema: dict[str, Any] | None, timeout: float | None, on_timeout: str, state: Any
    ) -> Any:
        if on_timeout not in ON_TIMEOUT:
            raise ValueError(f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, not {on_timeout!r}")
        if schema is not None:  # a handler's bad schema fails its request now, not every answer
            jsonschema.validators.validator_for(schema).check_schema(schema)
        answers = list(self.inputs.values())
        n, self._asked = self._asked, self._asked + 1
        if n < len(answers):
            return answers[n]
        now = self.now()
        expires = None if timeout is None else now + float(timeout)
        raise InputRequested(InputAsk(new_id("inp"), str(prompt), schema, expires, on_timeout, now), state)

    def resumed_answer(self) -> Any:
        """For an agent that keeps its own place (`ask(state=...)`, e.g. the LLM agent's
        conversation) instead of replaying its asks: the latest answer, every answer so far
        counted as consumed, so its next `ask` is a new question."""
        self._asked = len(self.inputs)
        return list(self.inputs.values())[-1] if self.inputs else None

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    async def checkpoint(self) -> None:
        """Raise Cancelled if the request was cancelled; otherwise let others run."""
        if self.cancel_event.is_set():
            raise Cancelled(f"request {self.request_id} was cancelled")
        await asyncio.sleep(0)


def _on_a_loop() -> bool:
    """True on a thread running an event loop (an async handler), False in a sync handler's."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _ready(value: Any) -> Any:
    return value


@runtime_checkable
class Agent(Protocol):
    """Something that turns a message into a Result, reporting through ctx."""

    id: str
    description: str

    async def run(self, message: str, ctx: RunContext) -> Result: ...


def coerce_result(value: Any, agent_id: str) -> Result:
    """A handler may return a str, a dict with at least `text`, or a Result."""
    if isinstance(value, Result):
        return value if value.agent else Result(value.text, agent_id, value.extra)
    if isinstance(value, str):
        return Result(value, agent_id)
    if isinstance(value, dict) and "text" in value:
        extra = {k: v for k, v in value.items() if k not in ("text", "agent")}
        return Result(str(value["text"]), str(value.get("agent") or agent_id), extra)
    raise TypeError(
        f"agent {agent_id!r} returned {type(value).__name__}; expected a str or a dict with 'text'"
    )
