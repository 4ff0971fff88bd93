"""The built-in LLM agent behind POST /v1/responses, driven by the official `openai` package,
against the fake OpenAI server (tests/support/fake_openai.py): the model receives the whole
conversation -- the agent's system prompt, the Response's `instructions`, every input message
and, along a `previous_response_id` chain, the earlier turns with their answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import openai
import pytest

from tests.support.fake_openai import FakeOpenAI, Text
from tests.support.server import CLIENT_KEY, Server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(make_server: Callable[..., Server], fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    model = {"provider": "openai", "name": "fake-model", "base_url": fake.base_url, "api_key": "sk-test"}
    agent = {"id": "llm", "model": model, "system_prompt": "Be brief.", "default": True}
    server = make_server(agents=[agent], workflow={"task_timeout": 10})
    with openai.OpenAI(base_url=f"{server.base}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30) as c:
        yield c


def test_the_model_receives_the_whole_input_list_and_the_instructions(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    fake.script(Text(["Paris, still."]))
    resp = client.responses.create(
        model="llm",
        instructions="Answer in one line.",
        input=[
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Paris."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "And now?"}]},
        ],
    )
    assert resp.status == "completed" and resp.output_text == "Paris, still."
    [sent] = fake.requests
    assert sent.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And now?"},
    ]


def test_a_previous_response_id_chain_carries_the_earlier_turns(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    fake.script(Text(["Hello Ada."]), Text(["Your name is Ada."]))
    one = client.responses.create(model="llm", input="My name is Ada.", instructions="Be warm.")
    two = client.responses.create(model="llm", input="What is my name?", previous_response_id=one.id)
    assert two.output_text == "Your name is Ada."
    assert fake.requests[1].messages == [
        {"role": "system", "content": "Be brief."},  # instructions are per turn, as with OpenAI
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


def test_a_developer_message_reaches_the_model_as_a_system_message(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    fake.script(Text(["ok"]))
    client.responses.create(
        model="llm",
        input=[{"role": "developer", "content": "Use metric units."}, {"role": "user", "content": "hi"}],
    )
    assert fake.requests[0].messages[1:] == [
        {"role": "system", "content": "Use metric units."},
        {"role": "user", "content": "hi"},
    ]
