"""Run a LangGraph graph (`langgraph`, models via `langchain-openai`) as an errand handler.

    from errand.adapters import langgraph as errand_langgraph

    graph = builder.compile()                     # a StateGraph with a `messages` key
    handler = errand_langgraph.handler(graph)     # formation.yaml: handler: my_module:handler

The run is the graph's own `astream(..., stream_mode=["tasks", "messages", "values"])`: a node
starting → a numbered step ("Step 1: model"); a node's AI message asking for tools → "Calling
tool X" as the tool node starts, and its ToolMessage → a `tool_call` event; the chat model's
tokens → content events; the last state → the result (its last message's text). errand's
cancel and `task_timeout` cancel the task iterating the stream, which cancels the graph's
running nodes (the model call's HTTP request with them); the stream is closed at once.
Provider failures become Transient/PermanentError (adapters/failures.py); make the model with
`max_retries=0` (errand retries).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel

from errand.adapters.failures import as_errand_error
from errand.adapters.output import to_result
from errand.adapters.reporter import Reporter
from errand.agents.base import RunContext
from errand.models import Result

__all__ = ["FRAMEWORK", "handler", "messages_input", "report", "run_graph"]

FRAMEWORK = "langgraph"

Handler = Callable[[str, RunContext], Awaitable[Result]]
Graph = Pregel[Any, Any, Any, Any]


def messages_input(message: str) -> dict[str, Any]:
    """The usual graph input: a `messages` state holding the user's message."""
    return {"messages": [{"role": "user", "content": message}]}


def handler(
    graph: Graph,
    *,
    to_input: Callable[[str], Any] = messages_input,
    config: RunnableConfig | None = None,
) -> Handler:
    """An errand handler (`fn(message, ctx)`) that runs `graph` on `to_input(message)`."""

    async def run(message: str, ctx: RunContext) -> Result:
        return await run_graph(ctx, graph, to_input(message), config=config)

    run.__qualname__ = run.__name__ = f"langgraph_handler[{graph.name}]"
    return run


async def run_graph(
    ctx: RunContext, graph: Graph, input: Any, *, config: RunnableConfig | None = None
) -> Result:
    """Run `graph` streamed, reporting through ctx; the last state becomes the Result."""
    reporter = Reporter(ctx)
    asked: list[ToolCall] = []
    final: Any = None
    # astream is an async generator (typed as an iterator): closed at once when we stop reading.
    stream = cast(
        "AsyncGenerator[Any, None]",
        graph.astream(input, config, stream_mode=["tasks", "messages", "values"], version="v2"),
    )
    try:
        async with aclosing(stream) as parts:
            async for part in parts:
                if part["type"] == "values":
                    final = part["data"]
                else:
                    report(part["type"], part["data"], reporter, asked)
    except Exception as exc:
        failure = as_errand_error(exc, FRAMEWORK)
        if failure is exc:
            raise
        raise failure from exc
    extra = {"framework": FRAMEWORK, "steps": reporter.steps, "tools": reporter.tool_calls}
    return to_result(_answer(final), ctx.agent_id, extra)


def report(kind: str, data: Any, reporter: Reporter, asked: list[ToolCall]) -> None:
    """One `tasks` or `messages` part of the stream, as errand reports it. Tools a node's AI
    message asked for (collected in `asked`) are reported when the next node (the tool node)
    starts, so "Calling tool X" is the progress shown while the tool runs."""
    if kind == "messages":
        chunk = data[0]
        if isinstance(chunk, AIMessageChunk):
            reporter.text(str(chunk.text))
    elif kind == "tasks" and isinstance(data, Mapping):
        if "input" in data:  # a node starts (its end carries `result` instead)
            reporter.step(str(data["name"]))
            for call in asked:
                reporter.tool_call(call["name"], call["id"], call["args"])
            asked.clear()
            return
        for message in _messages(data.get("result")):
            if isinstance(message, AIMessage):
                asked.extend(message.tool_calls)
            elif isinstance(message, ToolMessage):
                reporter.tool_result(message.tool_call_id, message.content)


def _messages(update: Any) -> list[Any]:
    if isinstance(update, Mapping) and isinstance(update.get("messages"), list):
        return list(update["messages"])
    return []


def _answer(state: Any) -> Any:
    """The last message's text for a `messages` state; any other state as it is."""
    messages = _messages(state)
    if messages and isinstance(messages[-1], BaseMessage):
        return str(messages[-1].text)
    return state
