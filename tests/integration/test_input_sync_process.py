"""`ctx.ask` from a sync handler (its worker thread) and from an `isolation: process` child, over
real HTTP: each question pauses the request (`input_required`), each answer resumes the handler
from its start with `ctx.inputs` (and the kept `ctx.input_state`), as for an async handler inline."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.integration.test_input_api import answer, waiting
from tests.support.agents import NAME_SCHEMA
from tests.support.server import Server, wait_for

AGENTS = [
    {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
    {"id": "sync-inline", "handler": "tests.support.agents:sync_asker"},
    {"id": "sync-process", "handler": "tests.support.agents:sync_asker", "isolation": "process"},
    {"id": "async-process", "handler": "tests.support.agents:asker", "isolation": "process"},
]


@pytest.fixture
def srv(make_server: Callable[..., Server]) -> Server:
    return make_server(agents=AGENTS)


def submit(c: httpx.Client, agent: str, **body: object) -> str:
    r = c.post("/v1/chat", json={"message": "hi", "agent_id": agent, "mode": "async", **body})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


@pytest.mark.parametrize("agent", ["sync-inline", "sync-process"])
def test_a_sync_handler_asks_twice_and_resumes_with_its_inputs_and_state(srv: Server, agent: str) -> None:
    c = srv.client()
    rid = submit(c, agent)
    first = waiting(c, rid)["input_request"]
    assert first["prompt"] == "What is your name?" and first["schema"] == NAME_SCHEMA
    assert answer(c, rid, first["id"], {"name": "Ada"}).status_code == 202
    second = waiting(c, rid)["input_request"]
    assert second["prompt"] == "How many?" and second["id"] != first["id"]
    assert answer(c, rid, second["id"], 3).status_code == 202
    done = wait_for(c, rid)
    assert done["status"] == "completed" and done["attempts"] == 3, done
    assert done["result"]["text"] == "hello Ada x3 (hi)"
    assert done["result"]["inputs"] == [first["id"], second["id"]]
    assert done["result"]["kept"] == {"asked": "count"}  # the state of the ask, handed back


def test_an_async_handler_in_a_child_process_asks_with_an_expiry(srv: Server) -> None:
    c = srv.client()
    rid = submit(c, "async-process", metadata={"ask_timeout": 600})
    doc = waiting(c, rid)
    question = doc["input_request"]
    assert question["prompt"] == "What is your name?"
    assert question["expires_at"] is not None and question["expires_at"] > doc["created_at"] + 590
    assert answer(c, rid, question["id"], {"name": "Grace"}).status_code == 202
    done = wait_for(c, rid)
    assert done["status"] == "completed" and done["result"]["text"] == "hello Grace (hi)"
    assert done["result"]["inputs"] == [question["id"]]


def test_a_wrong_answer_is_refused_before_the_child_runs_again(srv: Server) -> None:
    c = srv.client()
    rid = submit(c, "sync-process")
    question = waiting(c, rid)["input_request"]
    refused = answer(c, rid, question["id"], {"nom": "Ada"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "INVALID_REQUEST"
    assert c.get(f"/v1/requests/{rid}").json()["status"] == "input_required"
