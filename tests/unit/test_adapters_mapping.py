"""Each framework's own stream events, built with the framework's classes, map to errand's
reports: text → `content`, tool calls → progress "Calling tool X", steps → numbered progress."""

from __future__ import annotations

from typing import Any

from agents import Agent
from agents.items import ToolCallItem, ToolCallOutputItem
from agents.stream_events import AgentUpdatedStreamEvent, RawResponsesStreamEvent, RunItemStreamEvent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolCall, ToolMessage
from openai.types.responses import ResponseFunctionToolCall, ResponseTextDeltaEvent
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
)

from errand.adapters import langgraph, openai_agents, pydantic_ai
from errand.adapters.langgraph import _answer
from errand.adapters.reporter import Reporter
from errand.agents.base import RunContext


def recording() -> tuple[Reporter, list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext("r1", "u1", None, {}, 1, "assistant", sink=lambda t, d, p: seen.append((t, d)))
    return Reporter(ctx), seen


def progress_messages(seen: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [d["message"] for t, d in seen if t == "progress"]


def tool_events(seen: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [d for t, d in seen if t == "tool_call"]


def text_of(seen: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(d["text"] for t, d in seen if t == "content")


def test_openai_agents_events() -> None:
    reporter, seen = recording()
    agent: Agent[Any] = Agent(name="helper")
    call = ResponseFunctionToolCall(arguments="{}", call_id="c1", name="get_weather", type="function_call")
    output: Any = {"type": "function_call_output", "call_id": "c1", "output": "21 C"}
    delta = ResponseTextDeltaEvent(
        content_index=0,
        delta="Sun",
        item_id="i",
        logprobs=[],
        output_index=0,
        sequence_number=1,
        type="response.output_text.delta",
    )
    for event in [
        AgentUpdatedStreamEvent(new_agent=agent),
        RunItemStreamEvent(name="tool_called", item=ToolCallItem(agent=agent, raw_item=call)),
        RawResponsesStreamEvent(data=delta),
        RawResponsesStreamEvent(data=delta.model_copy(update={"delta": "ny"})),
        RunItemStreamEvent(
            name="tool_output", item=ToolCallOutputItem(agent=agent, raw_item=output, output="21 C")
        ),
    ]:
        openai_agents.report(event, reporter)
    assert progress_messages(seen) == ["Step 1: agent helper", "Calling tool get_weather"]
    assert tool_events(seen) == [{"id": "c1", "name": "get_weather", "arguments": "{}", "result": "21 C"}]
    assert text_of(seen) == "Sunny"
    assert reporter.tool_calls == ["get_weather"]


def test_openai_agents_hosted_tool_named_by_type() -> None:
    assert openai_agents._tool_name({"type": "web_search_call", "id": "x"}) == "web_search_call"


def test_langgraph_parts() -> None:
    reporter, seen = recording()
    asked: list[ToolCall] = []
    ask = AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}])
    result = ToolMessage(content="sunny", tool_call_id="c1", name="get_weather")
    parts: list[tuple[str, Any]] = [
        ("tasks", {"id": "1", "name": "model", "input": {}, "triggers": ()}),
        ("messages", (AIMessageChunk(content="Let me"), {"langgraph_node": "model"})),
        ("tasks", {"id": "1", "name": "model", "error": None, "result": {"messages": [ask]}}),
        ("tasks", {"id": "2", "name": "tools", "input": {}, "triggers": ()}),
        ("messages", (ToolMessage(content="sunny", tool_call_id="c1"), {"langgraph_node": "tools"})),
        ("tasks", {"id": "2", "name": "tools", "error": None, "result": {"messages": [result]}}),
        ("messages", (AIMessageChunk(content=" check."), {"langgraph_node": "model"})),
    ]
    for kind, data in parts:
        langgraph.report(kind, data, reporter, asked)
    # the tool call is reported as the tool node starts, so it is the progress shown while it runs
    assert progress_messages(seen) == ["Step 1: model", "Step 2: tools", "Calling tool get_weather"]
    assert text_of(seen) == "Let me check."  # tool results are not the model's text
    assert tool_events(seen) == [
        {"id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}', "result": "sunny"}
    ]
    assert asked == []


def test_langgraph_answer_is_the_last_message() -> None:
    state = {"messages": [HumanMessage("hi"), AIMessage("Hello!")]}
    assert _answer(state) == "Hello!"
    assert _answer({"count": 3}) == {"count": 3}


def test_pydantic_ai_events() -> None:
    reporter, seen = recording()
    for event in [
        PartStartEvent(index=0, part=ThinkingPart(content="hmm")),
        PartStartEvent(index=0, part=ToolCallPart(tool_name="get_weather", args="{}")),
        FunctionToolCallEvent(part=ToolCallPart(tool_name="get_weather", args="{}", tool_call_id="c9")),
        FunctionToolResultEvent(
            part=ToolReturnPart(tool_name="get_weather", content="x" * 300, tool_call_id="c9")
        ),
        PartStartEvent(index=0, part=TextPart(content="It is ")),
        PartDeltaEvent(index=0, delta=TextPartDelta(content_delta="sunny")),
    ]:
        pydantic_ai.report(event, reporter)
    assert progress_messages(seen) == ["Calling tool get_weather"]
    assert text_of(seen) == "It is sunny"  # the first piece comes with the part's start
    (event,) = tool_events(seen)
    assert event["id"] == "c9" and event["name"] == "get_weather" and event["arguments"] == "{}"
    assert len(event["result"]) == 200 and event["result"].endswith("…")  # kept short
