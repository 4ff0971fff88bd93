"""LlmAgent through the real `openai` client over loopback HTTP against tests/support/fake_openai.py.

Nothing in errand is patched: the agent builds real requests, parses real SSE streams and meets
real HTTP errors and timeouts, so these tests check the provider contract as production sees it.
"""

from __future__ import annotations

import socket
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from errand.agents.base import Agent, Cancelled, RunContext
from errand.agents.llm import LlmAgent
from errand.config import AgentConfig, ModelConfig
from errand.errors import ConfigError, PermanentError, TransientError
from errand.models import Progress
from tests.support.fake_openai import (
    Call,
    FakeOpenAI,
    HttpError,
    Slow,
    StreamError,
    Text,
    ToolCalls,
)

pytestmark = pytest.mark.timeout(30)

TOOLS_SOURCE = '''
"""Tools for the LLM agent tests."""
import threading

from errand.errors import PermanentError

CALLS = []


def add(a: int, b: int) -> int:
    """Add two integers.

    The model only sees the first line.
    """
    CALLS.append(("add", a, b, threading.current_thread() is threading.main_thread()))
    return a + b


async def shout(text: str, times: int = 1) -> str:
    """Repeat text in capitals."""
    CALLS.append(("shout", text, times))
    return " ".join([text.upper()] * times)


def boom() -> str:
    """Always fails."""
    raise ValueError("kaput")


def forbidden() -> str:
    """Refuses the whole request."""
    raise PermanentError("this request may not use forbidden()")
'''

Recorded = list[tuple[str, dict[str, Any], Progress | None]]


@pytest.fixture
def tools_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh tool module in the formation folder (a unique name: sys.modules caches imports)."""
    name = f"llm_test_tools_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TOOLS_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(name)
    yield sys.modules[name]
    sys.modules.pop(name, None)


AgentFactory = Callable[..., LlmAgent]


@pytest.fixture
async def make_agent(fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[AgentFactory]:
    """Build agents against the fake; their connection pools are closed after the test."""
    agents: list[LlmAgent] = []

    def build(**overrides: Any) -> LlmAgent:
        model = ModelConfig(
            name="fake-model",
            base_url=fake.base_url,
            api_key="sk-test",
            timeout=overrides.pop("timeout", 5.0),
        )
        fields: dict[str, Any] = {
            "id": "researcher",
            "model": model,
            "system_prompt": "You are a careful researcher.",
            **overrides,
        }
        agent = LlmAgent(AgentConfig(**fields), base_dir=str(tmp_path))
        agents.append(agent)
        return agent

    yield build
    for agent in agents:
        await agent.aclose()


def make_ctx(events: Recorded) -> RunContext:
    return RunContext(
        request_id="req_test",
        user_id="0",
        session_id=None,
        metadata={},
        attempt=1,
        agent_id="researcher",
        sink=lambda t, d, p: events.append((t, d, p)),
    )


def of_type(events: Recorded, kind: str) -> list[dict[str, Any]]:
    return [data for t, data, _ in events if t == kind]


# --- streaming text, usage --------------------------------------------------------------------


async def test_streamed_text_is_emitted_delta_by_delta_and_returned(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    reply = Text.split("The answer, after careful research, is forty-two.", 5)
    fake.script(reply)
    agent = make_agent(temperature=0.2, max_tokens=256)
    events: Recorded = []

    result = await agent.run("What is the answer?", make_ctx(events))

    assert isinstance(agent, Agent)
    assert len(reply.chunks) == 5
    assert [e["text"] for e in of_type(events, "content")] == reply.chunks
    assert result.text == "".join(reply.chunks)
    assert result.agent == "researcher"
    assert result.extra["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert result.extra["model"] == "fake-model"
    assert result.extra["steps"] == 1
    assert result.extra["finish_reason"] == "stop"
    [sent] = fake.requests
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "fake-model"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["temperature"] == 0.2
    assert sent.body["max_tokens"] == 256
    assert "tools" not in sent.body
    assert sent.messages == [
        {"role": "system", "content": "You are a careful researcher."},
        {"role": "user", "content": "What is the answer?"},
    ]


async def test_unset_options_are_not_sent_and_missing_usage_is_tolerated(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    fake.script(Text(["hi"], usage=None))
    agent = make_agent(system_prompt=None)

    result = await agent.run("hello", make_ctx([]))

    assert result.text == "hi"
    assert result.extra["usage"] is None
    body = fake.requests[0].body
    assert "temperature" not in body and "max_tokens" not in body
    assert body["messages"] == [{"role": "user", "content": "hello"}]


# --- the tool-calling loop --------------------------------------------------------------------


async def test_tool_call_runs_the_tool_and_sends_its_result_back(
    fake: FakeOpenAI, make_agent: AgentFactory, tools_module: Any
) -> None:
    fake.script(ToolCalls([Call("add", {"a": 2, "b": 3})], content="Let me add."), Text(["2 + 3 = 5"]))
    agent = make_agent(tools=[f"{tools_module.__name__}:add"], max_steps=4)
    events: Recorded = []

    result = await agent.run("What is 2 + 3?", make_ctx(events))

    assert result.text == "2 + 3 = 5"
    assert tools_module.CALLS == [("add", 2, 3, False)]  # ran once, in a worker thread
    assert result.extra["steps"] == 2
    assert result.extra["usage"] == {"prompt_tokens": 30, "completion_tokens": 13, "total_tokens": 43}
    first, second = fake.requests
    assert first.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                    "additionalProperties": False,
                },
            },
        }
    ]
    assistant, tool_message = second.messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == "Let me add."
    assert assistant["tool_calls"] == [
        {"id": "call_1_0", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}
    ]
    assert tool_message == {"role": "tool", "tool_call_id": "call_1_0", "content": "5"}
    [progress] = [p for t, _, p in events if t == "progress"]
    assert progress == Progress(None, "Calling tool add", 1, 4)
    [call_event] = of_type(events, "tool_call")
    assert call_event["name"] == "add"
    assert call_event["arguments"] == '{"a": 2, "b": 3}'
    assert call_event["result"] == "5"
    assert call_event["error"] is False
    assert [e["text"] for e in of_type(events, "content")] == ["Let me add.", "2 + 3 = 5"]


async def test_several_calls_in_one_turn_and_model_mistakes_are_fed_back(
    fake: FakeOpenAI, make_agent: AgentFactory, tools_module: Any
) -> None:
    name = tools_module.__name__
    fake.script(
        ToolCalls(
            [
                Call("shout", {"text": "hey", "times": "2"}),  # "2" is coerced to 2
                Call("add", "{not json"),
                Call("add", {"a": 1}),
                Call("multiply", {"a": 1, "b": 2}),
                Call("boom"),
            ]
        ),
        Text(["done"]),
    )
    agent = make_agent(tools=[f"{name}:add", f"{name}:shout", f"{name}:boom"])
    events: Recorded = []

    result = await agent.run("go", make_ctx(events))

    assert result.text == "done"
    results = [m for m in fake.requests[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == [f"call_1_{i}" for i in range(5)]
    texts = [m["content"] for m in results]
    assert texts[0] == "HEY HEY"
    assert texts[1].startswith("Error: invalid arguments for tool add: arguments are not valid JSON")
    assert texts[2] == "Error: invalid arguments for tool add: missing required argument(s) b"
    assert texts[3].startswith("Error: there is no tool named 'multiply'; available: add, shout, boom")
    assert texts[4] == "Error: tool boom raised ValueError: kaput"
    assert tools_module.CALLS == [("shout", "hey", 2)]
    assert [e["error"] for e in of_type(events, "tool_call")] == [False, True, True, True, True]
    assert [p["message"] for p in of_type(events, "progress")] == [
        "Calling tool shout",
        "Calling tool add",
        "Calling tool add",
        "Calling tool multiply",
        "Calling tool boom",
    ]


async def test_a_tool_raising_an_errand_error_fails_the_run(
    fake: FakeOpenAI, make_agent: AgentFactory, tools_module: Any
) -> None:
    fake.script(ToolCalls([Call("forbidden")]), Text(["never"]))
    agent = make_agent(tools=[f"{tools_module.__name__}:forbidden"])

    with pytest.raises(PermanentError, match="may not use forbidden"):
        await agent.run("go", make_ctx([]))
    assert len(fake.requests) == 1


async def test_max_steps_exceeded_is_a_permanent_error(
    fake: FakeOpenAI, make_agent: AgentFactory, tools_module: Any
) -> None:
    fake.script(ToolCalls([Call("add", {"a": 1, "b": 1})]), ToolCalls([Call("add", {"a": 2, "b": 2})]))
    agent = make_agent(tools=[f"{tools_module.__name__}:add"], max_steps=2)

    with pytest.raises(PermanentError, match=r"max_steps=2 .*still asked for tools \(add\)"):
        await agent.run("loop forever", make_ctx([]))
    assert len(fake.requests) == 2
    assert [c[:3] for c in tools_module.CALLS] == [("add", 1, 1)]  # the last turn's tools never ran


async def test_an_unloadable_tool_fails_at_construction(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    with pytest.raises(ConfigError, match=r"agent 'researcher': tools\[0\] 'no_such_module_xyz:add'"):
        make_agent(tools=["no_such_module_xyz:add"])


# --- cancellation -----------------------------------------------------------------------------


async def test_cancelled_before_a_tool_call_raises_and_the_tool_never_runs(
    fake: FakeOpenAI, make_agent: AgentFactory, tools_module: Any
) -> None:
    fake.script(ToolCalls([Call("add", {"a": 1, "b": 2})], content="Adding."), Text(["never"]))
    agent = make_agent(tools=[f"{tools_module.__name__}:add"])
    events: Recorded = []
    ctx = make_ctx(events)

    def sink(kind: str, data: dict[str, Any], progress: Progress | None) -> None:
        events.append((kind, data, progress))
        if kind == "content":  # the user cancels while the model is still answering
            ctx.cancel_event.set()

    ctx.sink = sink
    with pytest.raises(Cancelled):
        await agent.run("add", ctx)
    assert tools_module.CALLS == []
    assert len(fake.requests) == 1
    assert of_type(events, "tool_call") == [] and of_type(events, "progress") == []


async def test_cancelled_before_the_first_model_call_sends_nothing(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    fake.script(Text(["never"]))
    ctx = make_ctx([])
    ctx.cancel_event.set()

    with pytest.raises(Cancelled):
        await make_agent().run("hi", ctx)
    assert fake.requests == []


# --- provider errors --------------------------------------------------------------------------


async def test_429_is_transient_and_carries_retry_after(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    fake.script(HttpError(429, "Rate limit reached", headers={"Retry-After": "2"}, type="requests"))

    with pytest.raises(TransientError, match="HTTP 429: Rate limit reached") as info:
        await make_agent().run("hi", make_ctx([]))
    assert info.value.retry_after == 2
    assert len(fake.requests) == 1  # the openai client itself did not retry


async def test_retry_after_ms_wins_over_retry_after(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    fake.script(HttpError(429, "slow down", headers={"Retry-After": "9", "retry-after-ms": "1500"}))

    with pytest.raises(TransientError) as info:
        await make_agent().run("hi", make_ctx([]))
    assert info.value.retry_after == 1.5


@pytest.mark.parametrize("status", [500, 502, 503, 529])
async def test_5xx_is_transient(fake: FakeOpenAI, make_agent: AgentFactory, status: int) -> None:
    fake.script(HttpError(status, "The server had an error", type="server_error"))

    with pytest.raises(TransientError, match=f"HTTP {status}: The server had an error") as info:
        await make_agent().run("hi", make_ctx([]))
    assert info.value.retry_after is None


async def test_x_should_retry_false_overrides_a_5xx(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    fake.script(HttpError(500, "do not retry this", headers={"x-should-retry": "false"}))

    with pytest.raises(PermanentError, match="HTTP 500: do not retry this"):
        await make_agent().run("hi", make_ctx([]))


@pytest.mark.parametrize(
    ("status", "message", "hint"),
    [
        (401, "Incorrect API key provided: sk-test.", "check the agent's model.api_key"),
        (403, "You are not allowed to sample from this model", "not allowed to use this model"),
        (400, "Invalid value for 'temperature'", ""),
        (404, "The model `fake-model` does not exist", "check model.name and model.base_url"),
        (422, "Unprocessable", ""),
    ],
)
async def test_client_errors_are_permanent_with_the_provider_message(
    fake: FakeOpenAI, make_agent: AgentFactory, status: int, message: str, hint: str
) -> None:
    fake.script(HttpError(status, message))

    with pytest.raises(PermanentError) as info:
        await make_agent().run("hi", make_ctx([]))
    text = str(info.value)
    assert not isinstance(info.value, TransientError)
    assert f"model 'fake-model' at {fake.base_url}" in text
    assert f"HTTP {status}: {message}" in text
    assert hint in text
    assert fake.pending == 0


async def test_a_slow_provider_times_out_as_transient(fake: FakeOpenAI, make_agent: AgentFactory) -> None:
    fake.script(Slow(5.0))
    started = time.monotonic()

    with pytest.raises(TransientError, match=r"no answer within model\.timeout \(0\.3s\)"):
        await make_agent(timeout=0.3).run("hi", make_ctx([]))
    assert time.monotonic() - started < 3.0


async def test_a_stream_that_stalls_midway_times_out_as_transient(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    fake.script(Text(["first ", "second"], chunk_delay=5.0))
    events: Recorded = []

    with pytest.raises(TransientError, match=r"no answer within model\.timeout"):
        await make_agent(timeout=0.3).run("hi", make_ctx(events))
    assert [e["text"] for e in of_type(events, "content")] == ["first "]


async def test_a_server_error_in_the_middle_of_a_stream_is_transient(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    fake.script(StreamError(["partial "], "The server had an error", type="server_error"))
    events: Recorded = []

    with pytest.raises(TransientError, match="failed mid-answer: The server had an error"):
        await make_agent().run("hi", make_ctx(events))
    assert [e["text"] for e in of_type(events, "content")] == ["partial "]


async def test_a_request_error_in_the_middle_of_a_stream_is_permanent(
    fake: FakeOpenAI, make_agent: AgentFactory
) -> None:
    fake.script(StreamError([], "Content rejected by policy", type="invalid_request_error"))

    with pytest.raises(PermanentError, match="APIError: Content rejected by policy") as info:
        await make_agent().run("hi", make_ctx([]))
    assert not isinstance(info.value, TransientError)


async def test_an_unreachable_provider_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = ModelConfig(name="m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2.0)
    agent = LlmAgent(AgentConfig(id="a", model=model), base_dir=str(tmp_path))

    with pytest.raises(TransientError, match="connection failed"):
        await agent.run("hi", make_ctx([]))
    await agent.aclose()
