"""Run an OpenAI Agents SDK agent (`openai-agents`) as an errand handler.

    from agents import Agent
    from errand.adapters import openai_agents

    agent = Agent(name="assistant", instructions="...", tools=[...])
    handler = openai_agents.handler(agent)        # formation.yaml: handler: my_module:handler

The run is the SDK's own `Runner.run_streamed`; its events become errand's: text deltas
(`response.output_text.delta`) → content events, `tool_called` → progress "Calling tool X",
`tool_output` → a `tool_call` event, an agent taking over (a handoff) → a numbered step.
errand's cancel and `task_timeout` cancel the task consuming the stream, which the SDK answers
by cancelling its run loop (`cancel()`, called here too, so no model call follows). Provider
failures become Transient/PermanentError (adapters/failures.py). Give the agent's model an
`AsyncOpenAI(max_retries=0)`: errand retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent, RunConfig, Runner
from agents.items import TResponseInputItem
from agents.run import DEFAULT_MAX_TURNS
from agents.stream_events import AgentUpdatedStreamEvent, RawResponsesStreamEvent, StreamEvent

from errand.adapters.failures import as_errand_error
from errand.adapters.output import to_result
from errand.adapters.reporter import Reporter
from errand.agents.base import RunContext
from errand.models import Result

__all__ = ["FRAMEWORK", "handler", "report", "run_agent"]

FRAMEWORK = "openai-agents"

Handler = Callable[[str, RunContext], Awaitable[Result]]


def handler(
    agent: Agent[Any], *, max_turns: int = DEFAULT_MAX_TURNS, run_config: RunConfig | None = None
) -> Handler:
    """An errand handler (`fn(message, ctx)`) that runs `agent` on the request's message."""

    async def run(message: str, ctx: RunContext) -> Result:
        return await run_agent(ctx, agent, message, max_turns=max_turns, run_config=run_config)

    run.__qualname__ = run.__name__ = f"openai_agents_handler[{agent.name}]"
    return run


async def run_agent(
    ctx: RunContext,
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    context: Any = None,
    max_turns: int = DEFAULT_MAX_TURNS,
    run_config: RunConfig | None = None,
) -> Result:
    """Run `agent` streamed, reporting through ctx; the final output is the Result's text."""
    result = Runner.run_streamed(agent, input, context=context, max_turns=max_turns, run_config=run_config)
    reporter = Reporter(ctx)
    try:
        async for event in result.stream_events():
            report(event, reporter)
    except Exception as exc:
        failure = as_errand_error(exc, FRAMEWORK)
        if failure is exc:
            raise
        raise failure from exc
    finally:
        if not result.is_complete:  # cancelled or failed while streaming: stop the run loop
            result.cancel()
    extra = {"framework": FRAMEWORK, "last_agent": result.last_agent.name, "tools": reporter.tool_calls}
    return to_result(result.final_output, ctx.agent_id, extra)


def report(event: StreamEvent, reporter: Reporter) -> None:
    """One event of the SDK's stream, as errand reports it (others are not shown)."""
    if isinstance(event, RawResponsesStreamEvent):
        if event.data.type == "response.output_text.delta":
            reporter.text(event.data.delta)
    elif isinstance(event, AgentUpdatedStreamEvent):
        reporter.step(f"agent {event.new_agent.name}")
    elif event.name == "tool_called":
        raw = event.item.raw_item
        reporter.tool_call(_tool_name(raw), _field(raw, "call_id"), _field(raw, "arguments"))
    elif event.name == "tool_output":
        call_id = _field(event.item.raw_item, "call_id")
        if call_id is not None:
            reporter.tool_result(call_id, getattr(event.item, "output", None))


def _field(raw: Any, name: str) -> Any:
    """A field of a raw item, which is a model or a dict depending on the tool kind."""
    return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)


def _tool_name(raw: Any) -> str:
    """A function call names its tool; hosted tools (web search, computer...) only have a type."""
    if isinstance(raw, dict):
        return str(raw.get("name") or raw.get("type") or "tool")
    return str(getattr(raw, "name", None) or getattr(raw, "type", None) or "tool")
