"""POST /v1/chat over real HTTP: async and sync answers, the mode decision, idempotency, ids."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from tests.support.server import FORMATION, Server, wait_for

ACK_KEYS = {"request_id", "status", "delivery", "poll_url", "estimated_seconds"}
GENERATED_ID = re.compile(r"req_[A-Za-z0-9_-]{22}")


def test_async_answer_is_202_with_location_and_the_true_state(server: Server) -> None:
    c = server.client()
    r = c.post("/v1/chat", json={"message": "hello", "mode": "async"})
    assert r.status_code == 202
    ack = r.json()
    assert set(ack) == ACK_KEYS
    assert GENERATED_ID.fullmatch(ack["request_id"])
    assert r.headers["location"] == f"/v1/requests/{ack['request_id']}" == ack["poll_url"]
    assert ack["status"] in ("pending", "processing", "completed")
    assert ack["delivery"] == "polling"
    assert isinstance(ack["estimated_seconds"], float)
    doc = wait_for(c, ack["request_id"])
    assert doc["status"] == "completed"
    assert doc["result"]["text"] == "echo: hello"
    assert doc["agent"] == "echo"


def test_async_without_workers_is_pending(make_server: Callable[..., Server]) -> None:
    c = make_server(with_workers=False).client()
    ack = c.post("/v1/chat", json={"message": "hello", "async": True}).json()
    assert ack["status"] == "pending"
    assert c.get(ack["poll_url"]).json()["status"] == "pending"


def test_a_replay_reports_processing_once_a_worker_runs_it(server: Server) -> None:
    c = server.client()
    body = {"message": "take your time", "agent_id": "slow", "mode": "async", "metadata": {"seconds": 3}}
    headers = {"X-Muxi-Idempotency-Key": "replay-state-1"}
    first = c.post("/v1/chat", json=body, headers=headers).json()
    deadline = time.monotonic() + 5
    while (again := c.post("/v1/chat", json=body, headers=headers).json())["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert again["request_id"] == first["request_id"]
    assert c.delete(first["poll_url"]).status_code == 200


def test_sync_answers_200_with_the_status_document(server: Server) -> None:
    c = server.client(user="alice")
    r = c.post("/v1/chat", json={"message": "hi", "mode": "sync"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "completed"
    assert doc["result"] == {"text": "echo: hi", "agent": "echo", "user": "alice"}
    assert doc["user_id"] == "alice"
    assert doc["attempts"] == 1 and isinstance(doc["duration_ms"], int)
    assert "error" not in doc
    got = c.get(f"/v1/requests/{doc['request_id']}").json()
    assert got.pop("input")["message"] == "hi"  # GET alone shows what was submitted
    assert got == doc


def test_sync_failure_answers_200_with_the_error(server: Server) -> None:
    r = server.client().post("/v1/chat", json={"message": "boom", "agent_id": "fail", "mode": "sync"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "failed"
    assert "cannot do 'boom'" in doc["error"]["message"]
    assert doc["error"]["retryable"] is False
    assert "result" not in doc


def test_sync_that_outlives_sync_wait_answers_202_and_goes_on(make_server: Callable[..., Server]) -> None:
    c = make_server(**{"async": {"sync_wait_seconds": 0.3}}).client()
    started = time.monotonic()
    r = c.post(
        "/v1/chat", json={"message": "long", "agent_id": "slow", "mode": "sync", "metadata": {"seconds": 1}}
    )
    elapsed = time.monotonic() - started
    assert r.status_code == 202
    assert 0.25 < elapsed < 0.9
    ack = r.json()
    assert ack["status"] == "processing"
    assert r.headers["location"] == ack["poll_url"]
    doc = wait_for(c, ack["request_id"])
    assert doc["status"] == "completed"
    assert doc["result"]["text"] == "slow: long"


def test_auto_mode_short_message_is_sync(server: Server) -> None:
    r = server.client().post("/v1/chat", json={"message": "What time is it?"})
    assert r.status_code == 200
    assert r.json()["status"] == "completed"


def test_auto_mode_request_threshold_zero_is_async(server: Server) -> None:
    r = server.client().post("/v1/chat", json={"message": "hi", "threshold_seconds": 0})
    assert r.status_code == 202


def test_auto_mode_config_threshold_zero_is_async(make_server: Callable[..., Server]) -> None:
    r = make_server(**{"async": {"threshold_seconds": 0}}).client().post("/v1/chat", json={"message": "hi"})
    assert r.status_code == 202
    assert r.json()["estimated_seconds"] >= 0


def test_auto_mode_heavy_message_is_async(server: Server) -> None:
    message = "Research competitor pricing and create a comparison spreadsheet"
    r = server.client().post("/v1/chat", json={"message": message})
    assert r.status_code == 202
    assert r.json()["estimated_seconds"] >= 30


def test_auto_mode_webhook_means_async(server: Server) -> None:
    body = {"message": "hi", "webhook_url": "http://127.0.0.1:9/hook"}
    r = server.client().post("/v1/chat", json=body)
    assert r.status_code == 202
    assert r.json()["delivery"] == "webhook"


def test_config_mode_sync_and_explicit_override(make_server: Callable[..., Server]) -> None:
    c = make_server(**{"async": {"mode": "sync", "threshold_seconds": 0, "sync_wait_seconds": 10}}).client()
    assert c.post("/v1/chat", json={"message": "hi"}).status_code == 200
    assert c.post("/v1/chat", json={"message": "hi", "mode": "auto"}).status_code == 202
    assert c.post("/v1/chat", json={"message": "hi", "use_async": True}).status_code == 202


def test_mode_synonyms(server: Server) -> None:
    c = server.client()
    cases: list[tuple[dict[str, Any], int]] = [
        ({"async": True}, 202),
        ({"use_async": True}, 202),
        ({"mode": "async", "async": True, "use_async": True}, 202),
        ({"async": False}, 200),
        ({"use_async": False, "threshold_seconds": 0}, 200),
        ({"mode": "sync", "async": False}, 200),
    ]
    for body, status in cases:
        r = c.post("/v1/chat", json={"message": "hi", **body})
        assert r.status_code == status, (body, r.text)


def test_conflicting_mode_spellings_are_422(server: Server) -> None:
    c = server.client()
    conflicts: list[dict[str, Any]] = [
        {"mode": "sync", "async": True},
        {"mode": "async", "use_async": False},
        {"async": True, "use_async": False},
        {"mode": "auto", "async": True},
    ]
    for body in conflicts:
        r = c.post("/v1/chat", json={"message": "hi", **body})
        assert r.status_code == 422, body
        err = r.json()["error"]
        assert err["code"] == "INVALID_REQUEST"
        assert "disagree" in err["message"]
        assert err["details"][0]["field"] == "mode"
    r = c.post("/v1/chat", json={"message": "hi", "mode": "later"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "mode"
    r = c.post("/v1/chat", json={"message": "hi", "async": "true"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "async"


def test_idempotency_replays_the_original(server: Server) -> None:
    c = server.client(user="idem")
    body = {"message": "once", "mode": "async"}
    first = c.post("/v1/chat", json=body, headers={"X-Muxi-Idempotency-Key": "k-1"})
    second = c.post(
        "/v1/chat", json={"mode": "async", "message": "once"}, headers={"X-Muxi-Idempotency-Key": "k-1"}
    )
    alias = c.post(f"/api/{FORMATION}/v1/chat", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == alias.status_code == 202
    rid = first.json()["request_id"]
    assert second.json()["request_id"] == rid == alias.json()["request_id"]
    listed = c.get("/v1/requests").json()
    assert [d["request_id"] for d in listed["requests"]] == [rid]
    # another user with the same key is another scope: a new request
    other = server.client(user="someone-else").post("/v1/chat", json=body, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 202 and other.json()["request_id"] != rid


def test_idempotent_sync_replay_answers_200_with_the_same_document(server: Server) -> None:
    c = server.client()
    headers = {"Idempotency-Key": "sync-1"}
    first = c.post("/v1/chat", json={"message": "hi", "mode": "sync"}, headers=headers)
    again = c.post("/v1/chat", json={"message": "hi", "mode": "sync"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()


def test_idempotency_key_with_another_body_is_422(server: Server) -> None:
    c = server.client()
    headers = {"X-Muxi-Idempotency-Key": "k-2"}
    assert c.post("/v1/chat", json={"message": "a", "mode": "async"}, headers=headers).status_code == 202
    r = c.post("/v1/chat", json={"message": "b", "mode": "async"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "INVALID_REQUEST"
    bad = c.post("/v1/chat", json={"message": "a"}, headers={"Idempotency-Key": "has space"})
    assert bad.status_code == 422


def test_client_request_id_and_duplicate(server: Server) -> None:
    c = server.client()
    r = c.post("/v1/chat", json={"message": "hi", "mode": "async", "request_id": "job-42"})
    assert r.status_code == 202
    assert r.json()["request_id"] == "job-42"
    assert r.headers["location"] == "/v1/requests/job-42"
    assert wait_for(c, "job-42")["result"]["text"] == "echo: hi"
    dup = c.post("/v1/chat", json={"message": "again", "mode": "async", "request_id": "job-42"})
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "CONFLICT"
    for bad in ["has space", "", "-leading", "x" * 129, "a/b"]:
        r = c.post("/v1/chat", json={"message": "hi", "request_id": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"][0]["field"] == "request_id"


def test_agent_choice_and_unknown_agent(server: Server) -> None:
    c = server.client()
    r = c.post(
        "/v1/chat", json={"message": "x", "agent_id": "slow", "mode": "sync", "metadata": {"seconds": 0}}
    )
    assert r.status_code == 200 and r.json()["agent"] == "slow"
    r = c.post("/v1/chat", json={"message": "x", "agent_id": "nobody"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"


def test_webhook_urls_are_checked(server: Server) -> None:
    c = server.client()
    for url in [
        "ftp://127.0.0.1/x",
        "not a url",
        "http://",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/",
    ]:
        r = c.post("/v1/chat", json={"message": "x", "webhook_url": url})
        assert r.status_code == 422, url
        assert r.json()["error"]["code"] == "INVALID_REQUEST"
    assert c.get("/v1/requests").json()["count"] == 0


def test_body_user_id_is_a_fallback_for_the_header(server: Server) -> None:
    c = server.client()
    doc = c.post("/v1/chat", json={"message": "x", "mode": "sync", "user_id": "bob"}).json()
    assert doc["user_id"] == "bob"
    header_wins = server.client(user="carol").post(
        "/v1/chat", json={"message": "x", "mode": "sync", "user_id": "bob"}
    )
    assert header_wins.json()["user_id"] == "carol"
