"""Run a PydanticAI agent (`pydantic-ai-slim[openai]`) as an errand handler.

    from pydantic_ai import Agent
    from errand.adapters import pydantic_ai as errand_pydantic_ai

    agent = Agent(model, instructions="...")
    handler = errand_pydantic_ai.handler(agent)   # formation.yaml: handler: my_module:handler

The run is the agent's own `run_stream_events`: text parts and their deltas → content events,
a function tool call → progress "Calling tool X" (its result → a `tool_call` event); the final
`AgentRunResultEvent` output is the result (a typed output is kept under `output`). errand's
cancel and `task_timeout` cancel the task iterating the events, which cancels the run and its
model request. Provider failures (PydanticAI's `ModelAPIError` family, keeping the SDK's error as
`__cause__`) become Transient/PermanentError (adapters/failures.py); give the provider an
`AsyncOpenAI(max_retries=0)` (errand retries).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.run import AgentRunResultEvent

from errand.adapters.failures import as_errand_error
from errand.adapters.output import to_result
from errand.adapters.reporter import Reporter
from errand.agents.base import RunContext
from errand.models import Result

__all__ = ["FRAMEWORK", "handler", "report", "run_agent"]

FRAMEWORK = "pydantic-ai"

Handler = Callable[[str, RunContext], Awaitable[Result]]


def handler(agent: Agent[Any, Any], *, deps: Any = None) -> Handler:
    """An errand handler (`fn(message, ctx)`) that runs `agent` on the request's message."""

    async def run(message: str, ctx: RunContext) -> Result:
        return await run_agent(ctx, agent, message, deps=deps)

    run.__qualname__ = run.__name__ = f"pydantic_ai_handler[{agent.name or 'agent'}]"
    return run


async def run_agent(ctx: RunContext, agent: Agent[Any, Any], input: str, *, deps: Any = None) -> Result:
    """Run `agent` with its event stream, reporting through ctx; its output is the Result."""
    reporter = Reporter(ctx)
    output: Any = None
    try:
        async with agent.run_stream_events(input, deps=deps) as events:
            async for event in events:
                if isinstance(event, AgentRunResultEvent):
                    output = event.result.output
                else:
                    report(event, reporter)
    except Exception as exc:
        failure = as_errand_error(exc, FRAMEWORK)
        if failure is exc:
            raise
        raise failure from exc
    extra = {"framework": FRAMEWORK, "tools": reporter.tool_calls}
    return to_result(output, ctx.agent_id, extra)


def report(event: AgentStreamEvent, reporter: Reporter) -> None:
    """One event of the agent's stream, as errand reports it (others are not shown)."""
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
        reporter.text(event.part.content)  # the first piece of a text part comes with its start
    elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        reporter.text(event.delta.content_delta)
    elif isinstance(event, FunctionToolCallEvent):
        reporter.tool_call(event.part.tool_name, event.part.tool_call_id, event.part.args)
    elif isinstance(event, FunctionToolResultEvent):
        reporter.tool_result(event.part.tool_call_id, event.part.content)
