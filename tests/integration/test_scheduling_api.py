"""POST /v1/chat scheduling fields over real HTTP: one turn per session (enqueue, reject with
409 SESSION_BUSY, interrupt), the per-user queue cap (429 + Retry-After), `waiting_on` and
`queue_position` in the status document, validation of the new fields, and auto mode using an
agent's `expected_seconds`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support.server import Server

AGENTS = [
    {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
    {"id": "wait", "handler": "tests.support.agents:cancellable"},
    {"id": "quick", "handler": "tests.support.agents:echo", "expected_seconds": 0.001},
]


def until(
    c: httpx.Client, rid: str, check: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = c.get(f"/v1/requests/{rid}").json()
        if check(doc):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.02)


def chat(c: httpx.Client, **body: Any) -> httpx.Response:
    return c.post("/v1/chat", json={"message": "hi", "mode": "async", **body})


def test_one_turn_per_session_enqueue_reject_interrupt(make_server: Callable[..., Server]) -> None:
    c = make_server(agents=AGENTS).client()
    first = chat(c, agent_id="wait", session_id="conv").json()["request_id"]
    until(c, first, lambda d: d["status"] == "processing")
    queued = chat(c, agent_id="wait", session_id="conv", multitask_strategy="enqueue").json()["request_id"]
    doc = c.get(f"/v1/requests/{queued}").json()
    assert (doc["status"], doc["waiting_on"]) == ("pending", "session")

    busy = chat(c, session_id="conv", on_busy="reject")
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "SESSION_BUSY"
    assert busy.json()["error"]["details"] == {"active_request_id": first}

    third = chat(c, agent_id="wait", session_id="conv", on_busy="interrupt")
    assert third.status_code == 202
    new = third.json()["request_id"]
    for old in (first, queued):
        doc = until(c, old, lambda d: d["status"] == "cancelled")
        assert doc["cancel_reason"] == "superseded"
    until(c, new, lambda d: d["status"] == "processing")
    assert c.delete(f"/v1/requests/{new}").status_code == 200


def test_queue_cap_answers_429_with_retry_after(make_server: Callable[..., Server]) -> None:
    server = make_server(with_workers=False, limits={"max_queued_per_user": 2, "queue_full_retry_after": 7})
    c = server.client(user="heavy")
    assert [chat(c).status_code for _ in range(2)] == [202, 202]
    full = chat(c)
    assert full.status_code == 429
    assert full.headers["retry-after"] == "7"
    assert full.json()["error"]["code"] == "RATE_LIMITED"
    assert chat(server.client(user="light")).status_code == 202  # another user is not harmed


def test_queue_cap_is_exact_under_concurrent_submits(make_server: Callable[..., Server]) -> None:
    server = make_server(with_workers=False, limits={"max_queued_per_user": 3, "queue_full_retry_after": 2})
    clients = [server.client(user="racer") for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: chat(clients[i % 8]), range(24)))
    assert Counter(r.status_code for r in answers) == {202: 3, 429: 21}
    full = next(r for r in answers if r.status_code == 429)
    assert full.headers["retry-after"] == "2"
    assert full.json()["error"]["details"] == {"max_queued_per_user": 3}
    listed = clients[0].get("/v1/requests", params={"status": "pending"}).json()
    assert len(listed["requests"]) == 3


def test_a_pending_request_says_why_it_waits(make_server: Callable[..., Server]) -> None:
    c = make_server(with_workers=False).client()
    ids = [chat(c).json()["request_id"] for _ in range(3)]
    other = chat(c, fairness_key="tenant-b").json()["request_id"]
    docs = [c.get(f"/v1/requests/{rid}").json() for rid in [*ids, other]]
    assert {d["waiting_on"] for d in docs} == {"worker"}
    positions = [d["queue_position"] for d in docs]
    assert positions[0] < positions[1] < positions[2]
    assert positions[3] <= 2  # a key of its own goes in the current round


def test_new_fields_are_validated(server: Server) -> None:
    c = server.client()
    for body in (
        {"priority": 0},
        {"priority": 6},
        {"priority": "1"},
        {"on_busy": "later"},
        {"multitask_strategy": "rollback"},
        {"on_busy": "reject", "multitask_strategy": "interrupt"},
        {"fairness_key": ""},
    ):
        r = chat(c, **body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "INVALID_REQUEST"


def test_priority_and_fairness_key_are_accepted(server: Server) -> None:
    c = server.client()
    r = chat(c, priority=1, fairness_key="tenant-a")
    assert r.status_code == 202
    assert until(c, r.json()["request_id"], lambda d: d["status"] == "completed")["result"]


def test_auto_mode_uses_expected_seconds_before_history(make_server: Callable[..., Server]) -> None:
    c = make_server(agents=AGENTS).client()
    long_message = "Research and compare in depth, then write a detailed report. " * 40
    quick = c.post("/v1/chat", json={"message": long_message, "agent_id": "quick"})
    assert quick.status_code == 200  # 1 ms expected: answered sync
    assert quick.json()["status"] == "completed"
    guessed = c.post("/v1/chat", json={"message": long_message, "agent_id": "echo"})
    assert guessed.status_code == 202  # the text heuristic alone says it is long
