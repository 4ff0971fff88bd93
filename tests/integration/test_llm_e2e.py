"""LLM agents in a formation served over HTTP, against the fake OpenAI server (tests/support/fake_openai.py).

The whole path is real: HTTP submit, SQLite, the worker, the `openai` client over loopback to a
scripted OpenAI-compatible server, retries with (tiny) backoff, the task timeout, the event
stream. Nothing in errand is patched; the fake answers exactly what each test scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.fake_openai import Call, FakeOpenAI, HttpError, Slow, Text, ToolCalls
from tests.support.server import Server, wait_for
from tests.support.sse_client import Received, read_events

pytestmark = pytest.mark.timeout(60)

FAST_RETRIES = {"max_attempts": 3, "initial_delay": 0.01, "max_delay": 0.05, "jitter": 0}


def model(fake: FakeOpenAI, name: str = "fake-model", **extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "name": name, "base_url": fake.base_url, "api_key": "sk-test", **extra}


def llm_agent(fake: FakeOpenAI, agent_id: str = "llm", **extra: Any) -> dict[str, Any]:
    return {"id": agent_id, "model": model(fake, timeout=10), "system_prompt": "Be brief.", **extra}


@pytest.fixture
def llm_server(make_server: Callable[..., Server], fake: FakeOpenAI) -> Server:
    agent = llm_agent(fake, tools=["tests.support.agents:add"], default=True)
    return make_server(agents=[agent], workflow={"task_timeout": 5, "retry": FAST_RETRIES})


def stream_chat(server: Server, **body: Any) -> Received:
    got = read_events(server.client(), "/v1/chat", method="POST", json_body={"stream": True, **body})
    assert got.status == 200 and got.closed_by_server
    return got


def submit(server: Server, message: str = "hi") -> str:
    r = server.client().post("/v1/chat", json={"message": message, "mode": "async"})
    assert r.status_code == 202, r.text
    request_id: str = r.json()["request_id"]
    return request_id


def test_streamed_model_deltas_arrive_as_content_events(llm_server: Server, fake: FakeOpenAI) -> None:
    fake.script(Text(["Hel", "lo, ", "wor", "ld"], chunk_delay=0.1))

    got = stream_chat(llm_server, message="Say hello")

    contents = [m.data["text"] for m in got.of("content")]
    assert "".join(contents) == "Hello, world"
    assert len(contents) >= 3  # written as the model streamed them, not once at the end
    assert got.types.index("content") < got.types.index("completed")
    done = got.messages[-1].data
    assert done["status"] == "completed" and done["attempts"] == 1
    assert done["result"]["text"] == "Hello, world" and done["result"]["agent"] == "llm"
    assert done["result"]["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert done["result"]["model"] == "fake-model"
    [sent] = fake.requests
    assert sent.body["stream"] is True and sent.headers["authorization"] == "Bearer sk-test"
    assert sent.messages[-1] == {"role": "user", "content": "Say hello"}


def test_tool_calls_appear_as_events(llm_server: Server, fake: FakeOpenAI) -> None:
    fake.script(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text(["2 + 3 = 5"]))

    got = stream_chat(llm_server, message="What is 2 + 3?")

    [call] = got.of("tool_call")
    assert call.data["name"] == "add" and call.data["result"] == "5" and call.data["error"] is False
    assert call.data["arguments"] == '{"a": 2, "b": 3}' and call.data["step"] == 1
    assert any(m.data["message"] == "Calling tool add" for m in got.of("progress"))
    result = got.messages[-1].data["result"]
    assert result["text"] == "2 + 3 = 5" and result["steps"] == 2
    # usage is summed over both model calls: (20 + 10, 8 + 5)
    assert result["usage"] == {"prompt_tokens": 30, "completion_tokens": 13, "total_tokens": 43}
    assert fake.requests[0].body["tools"][0]["function"]["name"] == "add"
    assert fake.requests[1].messages[-1] == {"role": "tool", "tool_call_id": "call_1_0", "content": "5"}


@pytest.mark.parametrize(
    "error",
    [
        HttpError(429, "Rate limit reached", type="rate_limit_error"),
        HttpError(500, "boom", type="server_error"),
    ],
    ids=["429", "500"],
)
def test_a_transient_provider_error_is_retried_then_succeeds(
    llm_server: Server, fake: FakeOpenAI, error: HttpError
) -> None:
    fake.script(error, Text(["recovered"]))

    rid = submit(llm_server)
    doc = wait_for(llm_server.client(), rid)

    assert doc["status"] == "completed" and doc["attempts"] == 2
    assert doc["result"]["text"] == "recovered"
    assert fake.pending == 0 and len(fake.requests) == 2
    events = read_events(llm_server.client(), f"/v1/requests/{rid}/events")
    [retry] = events.of("retry")
    assert f"HTTP {error.status}" in retry.data["error"]["message"]
    assert error.message in retry.data["error"]["message"]
    assert retry.data["error"]["retryable"] is True
    assert events.types.count("started") == 2


def test_a_rejected_api_key_fails_at_once_with_a_clear_error(llm_server: Server, fake: FakeOpenAI) -> None:
    fake.script(HttpError(401, "Incorrect API key provided"), Text(["never sent"]))

    rid = submit(llm_server)
    doc = wait_for(llm_server.client(), rid)

    assert doc["status"] == "failed" and doc["attempts"] == 1
    error = doc["error"]
    assert error["retryable"] is False and error["type"] == "PermanentError"
    assert "HTTP 401" in error["message"] and "Incorrect API key provided" in error["message"]
    assert "check the agent's model.api_key" in error["message"]
    assert len(fake.requests) == 1 and fake.pending == 1  # no second try


def test_a_model_slower_than_task_timeout_fails_after_every_retry(
    make_server: Callable[..., Server], fake: FakeOpenAI
) -> None:
    server = make_server(
        agents=[llm_agent(fake, default=True)], workflow={"task_timeout": 0.5, "retry": FAST_RETRIES}
    )
    fake.script(*[Slow(3.0, Text(["too late"])) for _ in range(3)])

    rid = submit(server)
    doc = wait_for(server.client(), rid, timeout=20)

    assert doc["status"] == "failed" and doc["attempts"] == 3
    assert doc["error"]["message"] == "Task exceeded timeout (0.5s)"
    assert doc["error"]["type"] == "TaskTimeout"
    assert len(fake.requests) == 3


# --- the router -------------------------------------------------------------------------------


@pytest.fixture
def routed_server(make_server: Callable[..., Server], fake: FakeOpenAI) -> Server:
    agents = [
        llm_agent(fake, "math", description="Does arithmetic", default=True),
        {**llm_agent(fake, "poet", description="Writes short poems"), "model": model(fake, "poet-model")},
    ]
    return make_server(
        agents=agents,
        router={"model": model(fake, "router-model")},
        workflow={"task_timeout": 5, "retry": FAST_RETRIES},
    )


def test_the_router_picks_the_agent_the_model_names(routed_server: Server, fake: FakeOpenAI) -> None:
    fake.script(Text(["poet"]), Text(["Roses are red"]))

    got = stream_chat(routed_server, message="A poem about the sea, please")

    [routed] = got.of("routed")
    assert routed.data == {"agent": "poet", "by": "model", "reason": None}
    assert got.types.index("started") < got.types.index("routed") < got.types.index("content")
    result = got.messages[-1].data["result"]
    assert result["agent"] == "poet" and result["text"] == "Roses are red"
    router_call, poet_call = fake.requests
    assert router_call.body["model"] == "router-model" and not router_call.body.get("stream")
    system = router_call.messages[0]["content"]
    assert "- math: Does arithmetic" in system and "- poet: Writes short poems" in system
    assert router_call.messages[1] == {"role": "user", "content": "A poem about the sea, please"}
    assert poet_call.body["model"] == "poet-model"


def test_a_named_agent_is_not_routed(routed_server: Server, fake: FakeOpenAI) -> None:
    fake.script(Text(["4"]))
    got = stream_chat(routed_server, message="2 + 2?", agent_id="math")
    assert got.of("routed") == []
    assert got.messages[-1].data["result"]["agent"] == "math"
    assert [r.body["model"] for r in fake.requests] == ["fake-model"]


@pytest.mark.parametrize(
    ("router_reply", "reason"),
    [(HttpError(500, "router down", type="server_error"), "failed"), (Text(["nobody-here"]), "names no")],
    ids=["error", "unknown-answer"],
)
def test_the_router_falls_back_to_the_default_agent(
    routed_server: Server, fake: FakeOpenAI, router_reply: Any, reason: str
) -> None:
    fake.script(router_reply, Text(["default answer"]))

    got = stream_chat(routed_server, message="Something")

    [routed] = got.of("routed")
    assert routed.data["agent"] == "math" and routed.data["by"] == "default"
    assert reason in routed.data["reason"]
    done = got.messages[-1].data
    assert done["status"] == "completed" and done["result"]["agent"] == "math"


def test_a_retried_routed_request_keeps_its_agent(routed_server: Server, fake: FakeOpenAI) -> None:
    fake.script(Text(["poet"]), HttpError(429, "busy", type="rate_limit_error"), Text(["A haiku"]))

    got = stream_chat(routed_server, message="A haiku")

    done = got.messages[-1].data
    assert done["attempts"] == 2 and done["result"]["agent"] == "poet"
    assert len(got.of("routed")) == 1  # asked once; the retry reused the choice
    assert [r.body["model"] for r in fake.requests] == ["router-model", "poet-model", "poet-model"]
