"""How an adapter reports a framework's run: numbered steps and tool calls as progress, text as content.

One wording for every framework, so a client reading `progress.message` sees the same
"Calling tool X" whichever framework the agent was written with.
"""

from __future__ import annotations

from errand.agents.base import RunContext

__all__ = ["Reporter"]


class Reporter:
    """Numbers the steps of one run and reports them through its ctx."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.steps = 0
        self.tool_calls: list[str] = []

    def step(self, name: str) -> None:
        """A step of the run started (a graph node, an agent taking over)."""
        self.steps += 1
        self.ctx.progress(message=f"Step {self.steps}: {name}", step=self.steps)

    def tool_call(self, name: str) -> None:
        """The model asked for a tool; it runs next."""
        self.tool_calls.append(name)
        self.ctx.progress(message=f"Calling tool {name}", step=self.steps or None)

    def text(self, delta: str) -> None:
        """A piece of the answer as the model writes it (the SSE stream's `content` events)."""
        if delta:
            self.ctx.emit(delta)
