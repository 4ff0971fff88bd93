"""OpenAI's Responses API (background mode) served by a real `errand serve` process, driven by
the official `openai` Python package, on SQLite and on PostgreSQL (issue 14 §2).

One server per backend serves the module's tests. Its agents (written next to the formation):
`words` streams the words of its message, `turns` notes when each turn starts and ends (to see
that `previous_response_id` runs turns of one session in order), `counted` reports token usage,
`fail` fails, `echo` answers what it was given (its message and ctx.messages), and the built-in
`sleepy` sleeps for the seconds its message names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.pg_fixtures import admin, run_sync, with_database
from tests.support.procs import serving, write_formation

pytestmark = pytest.mark.slow

KEY = "responses-client-key"
WORDS = " ".join(f"w{i}" for i in range(30))

AGENTS = r"""
import asyncio, json, os, time

from errand.errors import PermanentError

_HERE = os.path.dirname(os.path.abspath(__file__))


async def words(message, ctx):
    for i, word in enumerate(message.split()):
        ctx.emit(word if i == 0 else " " + word)
        await asyncio.sleep(0.04)
    return message


async def turns(message, ctx):
    with open(os.path.join(_HERE, "turns.log"), "a") as log:
        log.write(f"start {message} {time.time()}\n")
    await asyncio.sleep(0.4)
    with open(os.path.join(_HERE, "turns.log"), "a") as log:
        log.write(f"end {message} {time.time()}\n")
    return f"turn {message}"


async def counted(message, ctx):
    return {"text": "counted", "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


async def fail(message, ctx):
    raise PermanentError("the agent gave up")


def echo(message, ctx):  # sync, in a worker thread: what the handler was given
    return json.dumps({"message": message, "messages": ctx.messages})
"""


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def formation_for(folder: Path, backend: str, request: pytest.FixtureRequest, attempts: int = 1) -> Path:
    """formation.yaml (and the agents) in `folder`, on a new database of `backend`; each request
    gets `attempts` attempts (a lost worker's takes one)."""
    url = "sqlite:///responses.db"
    if backend == "postgres":
        server: str = request.getfixturevalue("pg_server")
        name = request.getfixturevalue("_pg_databases").new_name()
        run_sync(admin(server, f'CREATE DATABASE "{name}"'))
        url = with_database(server, name)
    agents = [{"id": n, "handler": f"slow_agents:{n}"} for n in ("words", "turns", "counted", "fail", "echo")]
    return write_formation(
        folder,
        {
            "name": "responses",
            "keys": {"client": [KEY], "admin": ["responses-admin-key"]},
            "storage": {"url": url},
            "async": {"sync_wait_seconds": 10},
            "workers": {"concurrency": 4, "lease_seconds": 5, "poll_interval": 0.1},
            "workflow": {"task_timeout": 60, "retry": {"max_attempts": attempts}},
            "agents": [*agents, {"id": "sleepy", "handler": "errand.agents.builtin:sleep"}],
        },
        AGENTS,
    )


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """(base URL, formation folder) of a running `errand serve` on the backend."""
    folder = tmp_path_factory.mktemp(f"responses-{request.param}")
    cfg = formation_for(folder, request.param, request)
    with serving(cfg, folder / "serve.log") as (base, _proc):
        yield base, folder


@pytest.fixture
def client(live: tuple[str, Path]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live[0]}/v1", api_key=KEY, max_retries=0, timeout=30) as c:
        yield c


def until_done(client: openai.OpenAI, resp_id: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        resp = client.responses.retrieve(resp_id)
        if resp.status not in ("queued", "in_progress") or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def dumped(events: Any) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in events]


def test_background_create_then_retrieve_until_completed(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="words", input="hello there", background=True, metadata={"t": "1"})
    assert resp.status == "queued" and resp.id.startswith("resp_") and resp.object == "response"
    assert resp.background is True and resp.model == "words" and resp.metadata == {"t": "1"}
    done = until_done(client, resp.id)
    assert done.status == "completed" and done.output_text == "hello there"
    item = done.output[0]
    assert item.type == "message" and item.role == "assistant" and item.content[0].type == "output_text"
    assert done.error is None and done.usage is None


def test_a_foreground_call_waits_for_the_result_and_reports_usage(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="counted", input=[{"role": "user", "content": "count"}])
    assert resp.status == "completed" and resp.output_text == "counted"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (7, 3, 10)


def test_a_failed_agent_is_a_failed_response_with_its_error(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="fail", input="x", background=True)
    done = until_done(client, resp.id)
    assert done.status == "failed" and done.error is not None
    assert done.error.code == "server_error" and "the agent gave up" in done.error.message


def test_cancel_a_running_response_and_again(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="sleepy", input="30", background=True)
    deadline = time.monotonic() + 10
    while client.responses.retrieve(resp.id).status != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
    cancelled = client.responses.cancel(resp.id)
    assert cancelled.status == "cancelled"
    assert client.responses.cancel(resp.id).status == "cancelled"  # idempotent
    assert client.responses.retrieve(resp.id).status == "cancelled"
    done = client.responses.create(model="counted", input="x")
    with pytest.raises(openai.ConflictError):
        client.responses.cancel(done.id)


def test_stream_deltas_add_up_to_the_output(client: openai.OpenAI) -> None:
    events = dumped(client.responses.create(model="words", input=WORDS, stream=True))
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 3 and "".join(deltas) == WORDS
    assert events[-1]["response"]["status"] == "completed"


def test_a_dropped_stream_resumes_with_starting_after_losing_and_repeating_nothing(
    client: openai.OpenAI,
) -> None:
    first: list[dict[str, Any]] = []
    with client.responses.create(model="words", input=WORDS, stream=True) as stream:
        for event in stream:
            first.append(event.model_dump(mode="json"))
            if sum(e["type"] == "response.output_text.delta" for e in first) == 3:
                break  # leaving the block closes the connection mid-stream
    resp_id = first[0]["response"]["id"]
    assert first[-1]["type"] == "response.output_text.delta"
    rest = dumped(
        client.responses.retrieve(resp_id, stream=True, starting_after=first[-1]["sequence_number"])
    )
    assert rest and rest[-1]["type"] == "response.completed"
    whole = dumped(client.responses.retrieve(resp_id, stream=True))  # the same log, from the start
    assert first + rest == whole
    assert [e["sequence_number"] for e in whole] == list(range(len(whole)))


def test_previous_response_id_runs_the_next_turn_in_the_same_session_after_it(
    client: openai.OpenAI, live: tuple[str, Path]
) -> None:
    one = client.responses.create(model="turns", input="one", background=True)
    two = client.responses.create(model="turns", input="two", background=True, previous_response_id=one.id)
    assert two.previous_response_id == one.id
    assert until_done(client, two.id).output_text == "turn two"
    lines = (live[1] / "turns.log").read_text().split("\n")
    at = {" ".join(line.split()[:2]): float(line.split()[2]) for line in lines if line}
    assert at["end one"] <= at["start two"]
    with httpx.Client(base_url=live[0], headers={"Authorization": f"Bearer {KEY}"}) as c:
        docs = [c.get(f"/v1/requests/{r.id.replace('resp_', 'req_', 1)}").json() for r in (one, two)]
    assert docs[0]["session_id"] == docs[1]["session_id"] == one.id


def test_each_response_is_an_errand_request_in_the_list(
    client: openai.OpenAI, live: tuple[str, Path]
) -> None:
    resp = client.responses.create(model="counted", input="listed")
    with httpx.Client(base_url=live[0], headers={"Authorization": f"Bearer {KEY}"}) as c:
        listed = c.get("/v1/requests", params={"limit": 200}).json()["requests"]
    mine = [d for d in listed if d["request_id"] == "req_" + resp.id.removeprefix("resp_")]
    assert len(mine) == 1 and mine[0]["kind"] == "response" and mine[0]["agent"] == "counted"


def test_delete_forgets_a_finished_response(client: openai.OpenAI, live: tuple[str, Path]) -> None:
    resp = client.responses.create(model="words", input="a private answer")
    assert resp.status == "completed"
    request_id = "req_" + resp.id.removeprefix("resp_")
    with httpx.Client(base_url=live[0], headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert "a private answer" in c.get(f"/v1/requests/{request_id}").text
        body = c.delete(f"/v1/responses/{resp.id}").json()
        assert body == {"id": resp.id, "object": "response.deleted", "deleted": True}
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(resp.id)
        with pytest.raises(openai.NotFoundError):  # a second DELETE: nothing left to delete
            client.responses.delete(resp.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="words", input="x", previous_response_id=resp.id)
        listed = c.get("/v1/requests", params={"limit": 200}).json()["requests"]
        assert request_id not in {d["request_id"] for d in listed}
        gone = c.get(f"/v1/requests/{request_id}")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "REQUEST_EXPIRED"
        assert "a private answer" not in gone.text


def test_delete_cancels_an_unfinished_response_first(client: openai.OpenAI, live: tuple[str, Path]) -> None:
    queued = client.responses.create(model="sleepy", input="30", background=True)
    running = client.responses.create(model="sleepy", input="30", background=True)
    deadline = time.monotonic() + 10
    while client.responses.retrieve(running.id).status != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
    for resp in (queued, running):
        assert client.responses.delete(resp.id) is None
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(resp.id)
    with httpx.Client(base_url=live[0], headers={"Authorization": f"Bearer {KEY}"}) as c:
        listed = c.get("/v1/requests", params={"limit": 200, "status": "processing"}).json()["requests"]
    assert "req_" + running.id.removeprefix("resp_") not in {d["request_id"] for d in listed}


def test_a_handler_receives_the_whole_input_list(client: openai.OpenAI) -> None:
    resp = client.responses.create(
        model="echo",
        instructions="Be terse.",
        input=[
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Blue."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Another?"}]},
        ],
    )
    got = json.loads(resp.output_text)
    assert got["message"] == "Another?"  # what it runs on: the last user message
    assert got["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ]
    again = client.responses.create(model="echo", input="And a third?", previous_response_id=resp.id)
    assert json.loads(again.output_text)["messages"] == [
        *got["messages"][1:],  # the chain so far, without the first turn's instructions
        {"role": "assistant", "content": resp.output_text},
        {"role": "user", "content": "And a third?"},
    ]


def test_a_turn_submitted_while_the_previous_runs_gets_its_answer(
    client: openai.OpenAI, live: tuple[str, Path]
) -> None:
    one = client.responses.create(model="turns", input="first", background=True)
    two = client.responses.create(model="echo", input="next", previous_response_id=one.id, background=True)
    with httpx.Client(base_url=live[0], headers={"Authorization": f"Bearer {KEY}"}) as c:
        stored = c.get(f"/v1/requests/{two.id.replace('resp_', 'req_', 1)}").json()["input"]["metadata"]
    pending = stored["errand.responses"]["history"][-1]
    assert pending == {"role": "assistant", "answer_of": one.id.replace("resp_", "req_", 1)}  # not known yet
    assert json.loads(until_done(client, two.id).output_text)["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "turn first"},  # read as the turn started: the first had ended
        {"role": "user", "content": "next"},
    ]


def test_errors_are_the_sdk_exceptions_openai_would_raise(
    client: openai.OpenAI, live: tuple[str, Path]
) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="no-such-agent", input="x")
    assert bad.value.code == "model_not_found" and bad.value.param == "model"
    assert "words" in bad.value.message and "sleepy" in bad.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="words", input="x", previous_response_id="resp_gone")
    with pytest.raises(openai.BadRequestError) as missing:
        client.responses.create(model="words", input=[{"role": "assistant", "content": "no user"}])
    assert missing.value.param == "input"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="words", input="x", tools=[{"type": "web_search"}])
    with openai.OpenAI(base_url=f"{live[0]}/v1", api_key="wrong-key", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as denied:
            stranger.responses.create(model="words", input="x")
    assert denied.value.status_code == 401
    err = denied.value.body
    assert isinstance(err, dict) and err["type"] == "authentication_error" and err["code"] == "unauthorized"


def test_an_idempotency_key_returns_the_same_response(client: openai.OpenAI) -> None:
    key = {"Idempotency-Key": f"once-{time.monotonic_ns()}"}
    one = client.responses.create(model="counted", input="x", background=True, extra_headers=key)
    two = client.responses.create(model="counted", input="x", background=True, extra_headers=key)
    assert one.id == two.id


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stream_cut_by_sigkill_of_its_server_resumes_after_a_restart_exactly(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The numbering lives in the database's log, not in a process: the server running a
    streamed response is SIGKILLed mid-answer; a restarted one takes the request over, and the
    stream resumes with nothing lost or repeated, the text included."""
    cfg = formation_for(tmp_path, backend, request, attempts=2)
    first: list[dict[str, Any]] = []
    with serving(cfg, tmp_path / "first.log") as (base, proc):
        with openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=30) as c:
            with c.responses.create(model="words", input=WORDS, stream=True) as stream:
                for event in stream:
                    first.append(event.model_dump(mode="json"))
                    if sum(e["type"] == "response.output_text.delta" for e in first) == 3:
                        proc.kill()  # the server, its worker and the open stream die here
                        break
    resp_id = first[0]["response"]["id"]
    with serving(cfg, tmp_path / "second.log") as (base, _proc):
        with openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=60) as c:
            after = first[-1]["sequence_number"]
            rest = dumped(c.responses.retrieve(resp_id, stream=True, starting_after=after))
            whole = dumped(c.responses.retrieve(resp_id, stream=True))
            done = c.responses.retrieve(resp_id)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as h:
            doc = h.get(f"/v1/requests/{resp_id.replace('resp_', 'req_', 1)}").json()
    assert done.status == "completed" and done.output_text == WORDS
    assert doc["attempts"] == 2  # the killed attempt, then the takeover that finished it
    assert first + rest == whole
    assert "".join(e["delta"] for e in whole if e["type"] == "response.output_text.delta") == WORDS
