"""The LLM agent's built-in `ask_user` tool, end to end against the fake OpenAI server: the
model asks for the tool, the request waits in input_required with the question, the answer
arrives over HTTP, and the second model call carries the conversation so far with the answer as
the tool's result (the first turn is not replayed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.test_input_api import answer, waiting
from tests.integration.test_llm_e2e import FAST_RETRIES, llm_agent
from tests.support.fake_openai import Call, FakeOpenAI, Text, ToolCalls
from tests.support.server import Server, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def asking_server(make_server: Callable[..., Server], fake: FakeOpenAI) -> Server:
    agent = llm_agent(fake, tools=["tests.support.agents:add"], ask_user=True, default=True)
    return make_server(agents=[agent], workflow={"task_timeout": 5, "retry": FAST_RETRIES})


def test_ask_user_pauses_and_the_answer_is_the_tool_result(asking_server: Server, fake: FakeOpenAI) -> None:
    fake.script(
        ToolCalls([Call("ask_user", {"question": "Which city?"}), Call("add", {"a": 2, "b": 3})]),
        Text(["Booked Paris, 5 nights."]),
    )
    c = asking_server.client()
    r = c.post("/v1/chat", json={"message": "Book me a trip", "mode": "async"})
    rid = r.json()["request_id"]
    doc = waiting(c, rid)
    assert doc["input_request"]["prompt"] == "Which city?"
    first = fake.requests[0].body
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "ask_user"]
    assert len(fake.requests) == 1  # nothing more was asked of the model while it waits
    assert answer(c, rid, doc["input_request"]["id"], "Paris").status_code == 202
    done = wait_for(c, rid)
    assert done["status"] == "completed" and done["result"]["text"] == "Booked Paris, 5 nights."
    assert len(fake.requests) == 2  # the first model turn was not replayed
    second = fake.requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    ask_call, add_call = second[2]["tool_calls"]
    assert ask_call["function"]["name"] == "ask_user"
    assert second[3] == {"role": "tool", "tool_call_id": ask_call["id"], "content": "Paris"}
    assert second[4]["tool_call_id"] == add_call["id"] and second[4]["content"] == "5"
    assert done["result"]["steps"] == 2 and done["result"]["usage"]["prompt_tokens"] > 0


def test_without_the_option_there_is_no_ask_user_tool(
    make_server: Callable[..., Server], fake: FakeOpenAI
) -> None:
    server = make_server(agents=[llm_agent(fake, default=True)], workflow={"task_timeout": 5})
    fake.script(ToolCalls([Call("ask_user", {"question": "?"})]), Text(["fine"]))
    c = server.client()
    rid = c.post("/v1/chat", json={"message": "hi", "mode": "async"}).json()["request_id"]
    assert wait_for(c, rid)["status"] == "completed"
    assert "tools" not in fake.requests[0].body
    assert "no tool named 'ask_user'" in fake.requests[1].messages[-1]["content"]
