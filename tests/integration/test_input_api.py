"""Human input over HTTP: a handler's `ctx.ask` pauses its request (`input_required`), POST
/v1/requests/{id}/input answers it, and the handler runs again from the start with the answer.
Real server, real SQLite, real worker and dispatcher in it, real loopback HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support import agents
from tests.support.server import CLIENT_KEY, OTHER_KEY, Server, until, wait_for
from tests.support.webhook_receiver import Receiver, receiving

AGENTS = [
    {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
    {"id": "asker", "handler": "tests.support.agents:asker"},
]


@pytest.fixture
def srv(make_server: Callable[..., Server]) -> Server:
    return make_server(agents=AGENTS, **{"async": {"webhook_initial_delay": 0.2}})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def ask(c: httpx.Client, **body: Any) -> str:
    r = c.post("/v1/chat", json={"message": "hi", "agent_id": "asker", "mode": "async", **body})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def waiting(c: httpx.Client, rid: str, timeout: float = 10.0) -> dict[str, Any]:
    """The document once the request waits for input (GET ?wait returns on input_required)."""
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = c.get(f"/v1/requests/{rid}", params={"wait": 5}).json()
        if doc["status"] == "input_required":
            return doc
        assert doc["status"] in ("pending", "processing"), doc
        assert time.monotonic() < deadline, doc


def answer(c: httpx.Client, rid: str, input_id: str, value: Any) -> httpx.Response:
    return c.post(f"/v1/requests/{rid}/input", json={"input_id": input_id, "value": value})


def test_round_trip_resumes_the_handler_from_the_start_with_the_answer(srv: Server) -> None:
    c = srv.client()
    rid = ask(c)
    doc = waiting(c, rid)
    question = doc["input_request"]
    assert question["prompt"] == "What is your name?" and question["schema"] == agents.NAME_SCHEMA
    assert question["expires_at"] is None and question["id"].startswith("inp_")
    assert "result" not in doc and doc["attempts"] == 1
    stored = srv.run(srv.store.get(rid))
    assert stored.input_request is not None  # the worker holds nothing: no lease while it waits
    r = answer(c, rid, question["id"], {"name": "Ada"})
    assert r.status_code == 202, r.text
    assert r.json() == {"request_id": rid, "input_id": question["id"], "status": "pending", "accepted": True}
    done = wait_for(c, rid)
    assert done["status"] == "completed" and done["result"]["text"] == "hello Ada (hi)"
    assert done["result"]["inputs"] == [question["id"]] and done["attempts"] == 2
    assert agents.ASK_RUNS[rid] == 2  # run again from the start ...
    assert agents.ASK_EFFECTS[rid] == ["prepared"]  # ... and its pre-ask code stayed idempotent
    types = [e.type for e in srv.run(srv.store.events_since(rid))]
    assert types.index("input_required") < types.index("input_received") < types.index("completed")


def test_answers_are_checked_against_the_schema_and_idempotent(srv: Server) -> None:
    c = srv.client()
    rid = ask(c)
    input_id = waiting(c, rid)["input_request"]["id"]
    bad = answer(c, rid, input_id, {"name": 7})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "INVALID_REQUEST" and "value.name" in bad.json()["error"]["message"]
    assert bad.json()["error"]["details"][0]["path"] == "$.name"
    missing = c.post(f"/v1/requests/{rid}/input", json={"input_id": input_id})
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "value"
    assert c.post(f"/v1/requests/{rid}/input", content=b"{").status_code == 400
    assert (
        srv.client(OTHER_KEY)
        .post(f"/v1/requests/{rid}/input", json={"input_id": input_id, "value": 1})
        .status_code
        == 404
    )
    unknown = answer(c, rid, "inp_nope", {"name": "x"})
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "INPUT_NOT_OUTSTANDING"
    assert answer(c, rid, input_id, {"name": "Ada"}).status_code == 202
    again = answer(c, rid, input_id, {"name": "Ada"})
    assert again.status_code == 202 and again.json()["accepted"] is False
    other = answer(c, rid, input_id, {"name": "Bob"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "INPUT_ALREADY_ANSWERED"
    assert wait_for(c, rid)["result"]["text"] == "hello Ada (hi)"


def test_an_admin_answers_any_owners_question_and_a_viewer_is_refused(
    make_server: Callable[..., Server],
) -> None:
    """The operator at the console (admin) answers for the person the request belongs to; a
    viewer reads the question but its answer is 403, by key as by the console session."""
    viewer_key = "viewer-key-eeeeeeee"
    srv = make_server(agents=AGENTS, keys={"viewer": [viewer_key]})
    owner = srv.client(CLIENT_KEY, "u7")
    rid = ask(owner)
    input_id = waiting(owner, rid)["input_request"]["id"]
    viewer = srv.client(viewer_key)
    assert viewer.get(f"/v1/requests/{rid}").json()["input_request"]["id"] == input_id
    refused = answer(viewer, rid, input_id, {"name": "Vic"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN", refused.text
    session = httpx.Client(base_url=srv.base, timeout=30)
    signed = session.post("/ui/session", json={"key": viewer_key})
    assert signed.status_code == 200, signed.text
    by_cookie = session.post(
        f"/v1/requests/{rid}/input",
        json={"input_id": input_id, "value": {"name": "Vic"}},
        headers={"X-CSRF-Token": signed.json()["csrf_token"]},
    )
    session.close()
    assert by_cookie.status_code == 403 and by_cookie.json()["error"]["code"] == "FORBIDDEN"
    assert owner.get(f"/v1/requests/{rid}").json()["status"] == "input_required"
    by_admin = answer(srv.admin(), rid, input_id, {"name": "Ada"})
    assert by_admin.status_code == 202, by_admin.text
    assert by_admin.json() == {"request_id": rid, "input_id": input_id, "status": "pending", "accepted": True}
    done = wait_for(owner, rid)
    assert done["status"] == "completed" and done["result"]["text"] == "hello Ada (hi)"


def test_two_questions_are_answered_in_ask_order(srv: Server) -> None:
    c = srv.client()
    rid = ask(c, metadata={"count": True})
    first = waiting(c, rid)["input_request"]["id"]
    assert answer(c, rid, first, {"name": "Ada"}).status_code == 202
    second = until(lambda: (d := c.get(f"/v1/requests/{rid}").json()).get("input_request") and d, 10)
    assert second["input_request"]["prompt"] == "How many?"
    assert answer(c, rid, second["input_request"]["id"], 0).status_code == 422  # minimum 1
    assert answer(c, rid, second["input_request"]["id"], 3).status_code == 202
    done = wait_for(c, rid)
    assert done["result"]["text"] == "hello Ada (hi) x3" and agents.ASK_RUNS[rid] == 3
    assert done["result"]["inputs"] == [first, second["input_request"]["id"]]


@pytest.mark.parametrize(("on_timeout", "status"), [("fail", "failed"), ("cancel", "cancelled")])
def test_an_unanswered_question_expires_by_on_timeout(srv: Server, on_timeout: str, status: str) -> None:
    c = srv.client()
    rid = ask(c, metadata={"ask_timeout": 0.5, "on_timeout": on_timeout})
    question = waiting(c, rid)["input_request"]
    assert question["expires_at"] is not None
    done = wait_for(c, rid)
    assert done["status"] == status
    if status == "failed":
        assert done["error"]["type"] == "InputTimeout"
    else:
        assert done["cancel_reason"] == "input_timeout"
    late = answer(c, rid, question["id"], {"name": "Ada"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "INPUT_NOT_OUTSTANDING"


def test_cancel_while_waiting(srv: Server) -> None:
    c = srv.client()
    rid = ask(c)
    input_id = waiting(c, rid)["input_request"]["id"]
    r = c.delete(f"/v1/requests/{rid}")
    assert r.status_code == 200 and r.json()["cancellation"] == "immediate"
    assert c.get(f"/v1/requests/{rid}").json()["status"] == "cancelled"
    late = answer(c, rid, input_id, {"name": "Ada"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "INPUT_NOT_OUTSTANDING"


def test_a_waiting_request_keeps_its_session_busy(srv: Server) -> None:
    c = srv.client()
    rid = ask(c, session_id="s1")
    waiting(c, rid)
    r = c.post("/v1/chat", json={"message": "next", "session_id": "s1", "on_busy": "reject", "mode": "async"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "SESSION_BUSY"
    r = c.post(
        "/v1/chat", json={"message": "next", "session_id": "s1", "on_busy": "interrupt", "mode": "async"}
    )
    assert r.status_code == 202
    assert c.get(f"/v1/requests/{rid}").json()["cancel_reason"] == "superseded"


def test_the_queue_gauge_counts_waiting_requests(srv: Server) -> None:
    c = srv.client()
    waiting(c, ask(c))
    text = c.get("/metrics").text
    assert 'errand_queue_depth{agent="asker",status="input_required"} 1.0' in text
    asked = until(
        lambda: re.search(r'errand_input_requests_total\{agent="asker"\} ([0-9.]+)', c.get("/metrics").text)
    )
    assert float(asked.group(1)) >= 1  # a process-wide counter: earlier tests count too


def test_a_webhook_announces_input_required_signed(srv: Server, receiver: Receiver) -> None:
    c = srv.client()
    rid = ask(c, webhook_url=receiver.url)
    until(lambda: receiver.hits, 10)
    hit = receiver.hits[0]
    body = Webhook(srv.webhook_secret).verify(hit.body, hit.headers)
    assert body["status"] == "input_required" and body["request_id"] == rid
    input_id = body["input_request"]["id"]
    assert json.loads(hit.body)["input_request"]["prompt"] == "What is your name?"
    assert answer(c, rid, input_id, {"name": "Ada"}).status_code == 202
    until(lambda: len(receiver.hits) >= 2, 10)
    final = Webhook(srv.webhook_secret).verify(receiver.hits[1].body, receiver.hits[1].headers)
    assert final["status"] == "completed" and final["result"]["text"] == "hello Ada (hi)"
    assert receiver.hits[0].webhook_id != receiver.hits[1].webhook_id
