"""The Agent protocol and the RunContext an agent reports through. Knows no HTTP and no SQL.

The worker builds a RunContext per attempt and binds its `sink` to the store; agents only see
`progress()`, `emit()` and `checkpoint()`. Reports are queued without blocking the agent (a sync
handler calls them from its thread), and written in order by the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from errand.agents.threads import ThreadGroup
from errand.errors import Cancelled
from errand.models import Progress, Result

__all__ = ["Agent", "Cancelled", "RunContext", "Sink", "coerce_result"]

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

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    async def checkpoint(self) -> None:
        """Raise Cancelled if the request was cancelled; otherwise let others run."""
        if self.cancel_event.is_set():
            raise Cancelled(f"request {self.request_id} was cancelled")
        await asyncio.sleep(0)


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
