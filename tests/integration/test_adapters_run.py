"""The adapters run each framework's agent in-process against the fake OpenAI server (real
HTTP over loopback, the framework's own streaming): the events errand records, the Result, the
mapped provider errors, and that cancelling the attempt's task stops the framework's run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from agents import Agent as SdkAgent
from agents import OpenAIChatCompletionsModel, function_tool, set_tracing_disabled
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from openai import AsyncOpenAI
from pydantic import SecretStr
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from errand.adapters import langgraph, openai_agents, pydantic_ai
from errand.agents.base import RunContext
from errand.agents.loading import is_async
from errand.errors import PermanentError, TransientError
from errand.models import Result
from tests.support.fake_openai import Call, FakeOpenAI, HttpError, Text, ToolCalls

Handler = Callable[[str, RunContext], Awaitable[Result]]
TOOL_RUNS: list[str] = []


async def get_weather(city: str) -> str:
    """Today's weather in a city."""
    TOOL_RUNS.append(city)
    return f"{city}: sunny"


async def slow_search(query: str, seconds: float) -> str:
    """Search the archive; takes `seconds`."""
    await asyncio.sleep(seconds)
    TOOL_RUNS.append(query)
    return "found"


def client(fake: FakeOpenAI, http: httpx.AsyncClient) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, http_client=http)


def sdk_handler(fake: FakeOpenAI, http: httpx.AsyncClient) -> Handler:
    set_tracing_disabled(True)
    model = OpenAIChatCompletionsModel(model="fake", openai_client=client(fake, http))
    tools = [function_tool(get_weather), function_tool(slow_search)]
    return openai_agents.handler(SdkAgent(name="helper", instructions="brief", tools=tools, model=model))


def graph_handler(fake: FakeOpenAI, http: httpx.AsyncClient) -> Handler:
    tools = [tool(get_weather), tool(slow_search)]
    llm = ChatOpenAI(
        model="fake",
        base_url=fake.base_url,
        api_key=SecretStr("sk-test"),
        max_retries=0,
        streaming=True,
        http_async_client=http,
    ).bind_tools(tools)

    async def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    return langgraph.handler(builder.compile())


def pydantic_handler(fake: FakeOpenAI, http: httpx.AsyncClient) -> Handler:
    model = OpenAIChatModel("fake", provider=OpenAIProvider(openai_client=client(fake, http)))
    agent = PydanticAgent(model, instructions="brief", tools=[get_weather, slow_search])
    return pydantic_ai.handler(agent)


MAKERS: dict[str, Callable[[FakeOpenAI, httpx.AsyncClient], Handler]] = {
    "openai-agents": sdk_handler,
    "langgraph": graph_handler,
    "pydantic-ai": pydantic_handler,
}


@pytest.fixture(params=list(MAKERS))
async def make(request: pytest.FixtureRequest, fake: FakeOpenAI) -> AsyncIterator[tuple[str, Handler]]:
    """(framework, a handler of its agent on the fake); the HTTP connections closed after."""
    TOOL_RUNS.clear()
    async with httpx.AsyncClient() as http:
        yield request.param, MAKERS[request.param](fake, http)


def context() -> tuple[RunContext, list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext("req_1", "u1", None, {}, 1, "assistant", sink=lambda t, d, p: seen.append((t, d)))
    return ctx, seen


async def test_tool_call_then_streamed_answer(make: tuple[str, Handler], fake: FakeOpenAI) -> None:
    name, handler = make
    assert is_async(handler)  # errand awaits it on the worker's loop (no thread)
    fake.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]), Text(["It is ", "sunny", "."]))
    ctx, seen = context()
    result = await handler("Weather in Oslo?", ctx)
    assert result.text == "It is sunny." and result.agent == "assistant"
    assert result.extra["framework"] == name and result.extra["tools"] == ["get_weather"]
    assert TOOL_RUNS == ["Oslo"]
    assert [d["text"] for t, d in seen if t == "content"] == ["It is ", "sunny", "."]
    assert "Calling tool get_weather" in [d["message"] for t, d in seen if t == "progress"]
    (call,) = [d for t, d in seen if t == "tool_call"]
    assert call["name"] == "get_weather" and call["result"] == "Oslo: sunny"
    assert call["arguments"].replace(" ", "") == '{"city":"Oslo"}'
    assert fake.pending == 0 and len(fake.requests) == 2
    assert all(r.body["stream"] is True for r in fake.requests)


async def test_provider_errors_are_mapped(make: tuple[str, Handler], fake: FakeOpenAI) -> None:
    handler = make[1]
    fake.script(HttpError(429, "slow down", headers={"retry-after": "4"}), HttpError(401, "bad key"))
    with pytest.raises(TransientError) as transient:
        await handler("hi", context()[0])
    assert transient.value.retry_after == 4.0 and "HTTP 429" in transient.value.message
    with pytest.raises(PermanentError, match="HTTP 401"):
        await handler("hi", context()[0])
    assert len(fake.requests) == 2  # no retry inside the framework: errand retries


async def test_cancel_stops_the_run(make: tuple[str, Handler], fake: FakeOpenAI) -> None:
    handler = make[1]
    fake.script(ToolCalls([Call("slow_search", {"query": "q", "seconds": 0.5})]), Text(["never"]))
    in_tool = asyncio.Event()

    def sink(kind: str, data: dict[str, Any], _progress: object) -> None:
        if kind == "progress" and data["message"] == "Calling tool slow_search":
            in_tool.set()

    ctx = RunContext("req_1", "u1", None, {}, 1, "assistant", sink=sink)
    task = asyncio.create_task(handler("search", ctx))
    await asyncio.wait_for(in_tool.wait(), 10)
    await asyncio.sleep(0.1)  # the tool is running
    task.cancel()  # what errand's cancel and task_timeout do to the attempt
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.0)  # past the tool's 0.5 s: a run still going would call the model
    assert TOOL_RUNS == [] and len(fake.requests) == 1 and fake.pending == 1
