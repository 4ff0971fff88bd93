"""How an adapter reports a framework's run: numbered steps and tool calls as progress, text as content.

One wording for every framework, so a client reading `progress.message` sees the same
"Calling tool X" whichever framework the agent was written with, and each finished tool call
is a `tool_call` event (id, name, arguments, result) as the built-in LLM agent writes it.
"""

from __future__ import annotations

import json
from typing import Any

from errand.agents.base import RunContext

__all__ = ["PREVIEW", "Reporter", "preview"]

PREVIEW = 200
"""Characters of a tool's arguments and result kept in its `tool_call` event."""


def preview(value: Any) -> str:
    """A tool's arguments or result as short text for an event."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


class Reporter:
    """Numbers the steps of one run and reports them through its ctx."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.steps = 0
        self.tool_calls: list[str] = []
        self._open: dict[str, tuple[str, str]] = {}

    def step(self, name: str) -> None:
        """A step of the run started (a graph node, an agent taking over)."""
        self.steps += 1
        self.ctx.progress(message=f"Step {self.steps}: {name}", step=self.steps)

    def tool_call(self, name: str, call_id: str | None = None, arguments: Any = None) -> None:
        """The model asked for a tool; it runs next."""
        self.tool_calls.append(name)
        if call_id is not None:
            self._open[call_id] = (name, preview(arguments if arguments is not None else ""))
        self.ctx.progress(message=f"Calling tool {name}", step=self.steps or None)

    def tool_result(self, call_id: str, result: Any) -> None:
        """A tool call reported by `tool_call(name, call_id)` returned `result`."""
        name, arguments = self._open.pop(call_id, ("", ""))
        data = {"id": call_id, "name": name, "arguments": arguments, "result": preview(result)}
        self.ctx.event("tool_call", data)

    def text(self, delta: str) -> None:
        """A piece of the answer as the model writes it (the SSE stream's `content` events)."""
        if delta:
            self.ctx.emit(delta)
