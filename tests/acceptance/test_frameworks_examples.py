"""The framework examples (issue 13 item 1) run as a user runs them: `errand serve` on the
example's own formation and agent module, pointed at the fake OpenAI server by OPENAI_BASE_URL.

Each of examples/openai_agents, examples/langgraph and examples/pydantic_ai is copied into a
temporary folder (its formation gets a test database, keys and a second agent, `short`, with
task_timeout 2 s), served by one real `errand serve` per framework, and driven over HTTP:

* the answer, the tool call (a progress and a `tool_call` event), the text as `content` events;
* a cancel while a tool runs stops the framework's run: the fake sees no further model call;
* a 429 then a success is retried by errand: completed after 2 attempts;
* a 400 fails at once (PermanentError, 1 attempt);
* task_timeout stops each attempt (2 attempts, each one model call, then failed).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.fake_openai import Call, FakeOpenAI, HttpError, Text, ToolCalls
from tests.support.procs import serving
from tests.support.sse_client import read_events

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FRAMEWORKS = ["openai_agents", "langgraph", "pydantic_ai"]
KEY = "frameworks-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}
SHORT_TIMEOUT = 2


def example_copy(name: str, folder: Path) -> Path:
    """The example's folder copied, its formation adjusted for a test; returns the formation."""
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns("*.db*", "__pycache__"))
    path = folder / "formation.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["keys"] = {"client": [KEY], "admin": ["frameworks-admin-key"]}
    data["storage"] = {"url": "sqlite:///test.db"}
    data["async"] = {"mode": "async"}
    data["workflow"]["retry"] = {"max_attempts": 2, "initial_delay": 0.05, "max_delay": 0.2}
    data["workers"] = {"concurrency": 4, "lease_seconds": 5, "poll_interval": 0.2}
    assistant = data["agents"][0]
    data["agents"].append({"id": "short", "handler": assistant["handler"], "task_timeout": SHORT_TIMEOUT})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module", params=FRAMEWORKS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_server: FakeOpenAI
) -> Iterator[tuple[str, str]]:
    """(framework, base URL) of an `errand serve` running that framework's example."""
    name: str = request.param
    folder = tmp_path_factory.mktemp(name)
    config = example_copy(name, folder / "example")
    env = {"OPENAI_BASE_URL": fake_server.base_url, "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "fake"}
    with serving(config, folder / "serve.log", env=env) as (base, _proc):
        yield name, base


@pytest.fixture
def client(served: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1], headers=HEADERS, timeout=30) as c:
        yield c


def submit(c: httpx.Client, message: str, agent: str = "assistant") -> str:
    r = c.post("/v1/chat", json={"message": message, "agent_id": agent, "mode": "async"})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def wait_terminal(c: httpx.Client, rid: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = c.get(f"/v1/requests/{rid}", params={"wait": 2}).json()
        if doc["status"] in ("completed", "failed", "cancelled"):
            return doc
    raise AssertionError(f"{rid} not terminal after {timeout}s: {doc}")


def wait_until(predicate: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_answer_progress_and_content_on_the_event_stream(client: httpx.Client, fake: FakeOpenAI) -> None:
    fake.script(
        ToolCalls([Call("get_weather", {"city": "Paris"})]),
        Text(["It is ", "sunny ", "in Paris."], chunk_delay=0.2),
    )
    rid = submit(client, "What is the weather in Paris?")
    received = read_events(client, f"/v1/requests/{rid}/events", timeout=30)
    assert received.closed_by_server and received.types[-1] == "completed", received.types
    messages = [m.data.get("message") for m in received.of("progress")]
    assert "Calling tool get_weather" in messages, messages
    (call,) = [m.data for m in received.of("tool_call")]
    assert call["name"] == "get_weather" and call["result"] == "Paris: sunny, 21 °C", call
    assert "".join(m.data["text"] for m in received.of("content")) == "It is sunny in Paris."
    assert len(received.of("content")) >= 2  # streamed as the model wrote it, not in one piece
    doc = wait_terminal(client, rid)
    assert doc["status"] == "completed" and doc["attempts"] == 1, doc
    assert doc["result"]["text"] == "It is sunny in Paris."
    assert fake.pending == 0 and len(fake.requests) == 2
    # the tool really ran: its answer went back to the model in the second call
    assert "Paris: sunny, 21 °C" in str(fake.requests[1].messages)
    assert all(r.body.get("stream") is True for r in fake.requests)


def test_cancel_stops_the_frameworks_run(client: httpx.Client, fake: FakeOpenAI) -> None:
    seconds = 2.0
    fake.script(
        ToolCalls([Call("slow_search", {"query": "storms", "seconds": seconds})]),
        Text(["must never be asked for"]),
    )
    rid = submit(client, "Search the archive for storms")

    def calling_tool() -> bool:
        progress = client.get(f"/v1/requests/{rid}").json().get("progress") or {}
        return progress.get("message") == "Calling tool slow_search"

    wait_until(calling_tool, "the slow tool to start")
    r = client.delete(f"/v1/requests/{rid}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    time.sleep(seconds + 1.5)  # the tool would have returned and the model been called again
    assert len(fake.requests) == 1 and fake.pending == 1, "the framework kept calling the model"
    doc = client.get(f"/v1/requests/{rid}").json()
    assert doc["status"] == "cancelled" and doc["attempts"] == 1, doc


def test_a_429_is_retried_to_success(client: httpx.Client, fake: FakeOpenAI) -> None:
    fake.script(
        HttpError(
            429,
            "Rate limit reached",
            headers={"retry-after": "0"},
            type="requests",
            code="rate_limit_exceeded",
        ),
        Text(["Sunny."]),
    )
    doc = wait_terminal(client, submit(client, "Weather?"))
    assert doc["status"] == "completed" and doc["attempts"] == 2, doc
    assert doc["result"]["text"] == "Sunny."
    assert len(fake.requests) == 2 and fake.pending == 0


def test_a_400_fails_at_once(client: httpx.Client, fake: FakeOpenAI) -> None:
    fake.script(HttpError(400, "Invalid 'messages': empty"), Text(["never"]))
    doc = wait_terminal(client, submit(client, "Weather?"))
    assert doc["status"] == "failed" and doc["attempts"] == 1, doc
    assert doc["error"]["type"] == "PermanentError" and doc["error"]["retryable"] is False, doc
    assert "HTTP 400" in doc["error"]["message"] and "Invalid 'messages'" in doc["error"]["message"]
    assert len(fake.requests) == 1


def test_task_timeout_stops_each_attempt(client: httpx.Client, fake: FakeOpenAI) -> None:
    slow = ToolCalls([Call("slow_search", {"query": "x", "seconds": 30})])
    fake.script(slow, slow, Text(["must never be asked for"]))
    started = time.monotonic()
    doc = wait_terminal(client, submit(client, "Search", agent="short"), timeout=40)
    assert time.monotonic() - started < 20  # not the tool's 30 s
    assert doc["status"] == "failed" and doc["attempts"] == 2, doc
    assert doc["error"]["message"] == f"Task exceeded timeout ({SHORT_TIMEOUT}s)", doc
    time.sleep(1.0)
    assert len(fake.requests) == 2 and fake.pending == 1, "a timed-out run kept calling the model"
