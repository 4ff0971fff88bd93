"""Webhooks end to end: real server, real SQLite, real dispatcher, a real receiver on 127.0.0.1.

Each test submits over HTTP, lets the worker and the dispatcher inside the server do their
work, and looks at what the receiver got (raw bytes and headers) and at what the API reports
(GET /v1/requests/{id} delivery state, GET .../deliveries, POST .../redeliver). Signatures are
checked three independent ways: errand.webhooks.verify, the Standard Webhooks library, and a
plain HMAC-SHA256 written out here. Backoff is configured small so retries take fractions of a
second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from errand.webhooks import verify
from tests.support.server import ADMIN_KEY, FORMATION, OTHER_KEY, Server, until, wait_for
from tests.support.webhook_receiver import Hit, Receiver, receiving

FAST = {"webhook_initial_delay": 0.4, "webhook_max_delay": 0.6, "webhook_retries": 3, "webhook_timeout": 5}
"""Retries 0.3-0.75 s apart (25% jitter): long enough to watch the `retrying` state."""

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def fast(make_server: Callable[..., Server]) -> Server:
    return make_server(**{"async": FAST})


def _submit(c: httpx.Client, url: str, **body: Any) -> str:
    r = c.post("/v1/chat", json={"message": "hello", "webhook_url": url, **body})
    assert r.status_code == 202, r.text
    assert r.json()["delivery"] == "webhook"
    rid: str = r.json()["request_id"]
    return rid


def _delivery(c: httpx.Client, rid: str) -> dict[str, Any]:
    r = c.get(f"/v1/requests/{rid}")
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()["delivery"]
    return state


def _settled(c: httpx.Client, rid: str, timeout: float = 10) -> dict[str, Any]:
    """The delivery state once delivered or failed."""

    def settled() -> dict[str, Any] | None:
        state = _delivery(c, rid)
        return state if state["state"] in ("delivered", "failed") else None

    return until(settled, timeout)


def _plain_hmac_checks(hit: Hit, secret: bytes, standard_key: bytes) -> None:
    """Both signatures recomputed by hand over the raw bytes received."""
    t = hit.headers["x-muxi-timestamp"]
    expected_muxi = hmac.new(secret, t.encode() + b"." + hit.body, hashlib.sha256).hexdigest()
    assert hit.headers["x-muxi-signature"] == f"t={t},v1={expected_muxi}"
    signed = f"{hit.webhook_id}.{hit.headers['webhook-timestamp']}.".encode() + hit.body
    expected_std = base64.b64encode(hmac.new(standard_key, signed, hashlib.sha256).digest()).decode()
    assert hit.headers["webhook-signature"] == f"v1,{expected_std}"


def test_chat_webhook_arrives_once_signed_three_verifiable_ways(server: Server, receiver: Receiver) -> None:
    c = server.client(user="u-hook")
    rid = _submit(c, receiver.url)
    [hit] = receiver.wait_for(1)
    assert hit.path == "/hook" and hit.answered == 200
    assert hit.headers["content-type"] == "application/json"
    # no async.webhook_secret: the database's generated whsec_ secret, never the admin key
    secret = server.webhook_secret
    assert secret.startswith("whsec_") and not verify(hit.body, hit.headers, ADMIN_KEY)
    assert verify(hit.body, hit.headers, secret)
    assert Webhook(secret).verify(hit.body, hit.headers, json_parse=False) is None
    _plain_hmac_checks(hit, secret.encode(), base64.b64decode(secret.removeprefix("whsec_")))
    assert not verify(hit.body + b" ", hit.headers, secret)  # the bytes are what is signed

    body = json.loads(hit.body)
    assert body["request_id"] == body["id"] == rid
    assert body["status"] == "completed" and body["result"]["text"] == "echo: hello"
    assert body["user_id"] == "u-hook" and body["object"] == "response"
    assert body["formation_id"] == FORMATION and body["webhook_url"] == receiver.url
    assert body["response"] == [{"type": "text", "text": "echo: hello"}]
    assert body["delivery"] == "webhook"  # the body keeps the mode string, frozen at the end
    assert hit.webhook_id.startswith("dlv")

    assert _settled(c, rid) == {
        "mode": "webhook",
        "state": "delivered",
        "attempts": 1,
        "last_status_code": 200,
        "next_attempt_at": None,
    }
    assert len(receiver.quiet_for(0.8)) == 1  # exactly one POST, no stray retry
    [delivery] = c.get(f"/v1/requests/{rid}/deliveries").json()["deliveries"]
    assert delivery["webhook_id"] == hit.webhook_id and delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_failing_receiver_is_retried_and_every_attempt_is_recorded(fast: Server, receiver: Receiver) -> None:
    receiver.script = [500, 503, 502]
    c = fast.client()
    rid = _submit(c, receiver.url)
    hits = receiver.wait_for(4)
    assert [h.answered for h in hits] == [500, 503, 502, 200]
    assert len({h.webhook_id for h in hits}) == 1  # one delivery: receivers dedupe on the id
    assert len({h.body for h in hits}) == 1  # the very same bytes every time
    assert all(verify(h.body, h.headers, fast.webhook_secret) for h in hits)
    assert sum(200 <= h.answered < 300 for h in hits) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    assert all(g >= 0.25 for g in gaps), gaps  # backoff really waited

    state = _settled(c, rid)
    assert state["state"] == "delivered" and state["attempts"] == 4 and state["last_status_code"] == 200
    r = c.get(f"/v1/requests/{rid}/deliveries")
    assert r.status_code == 200
    doc = r.json()
    assert doc["request_id"] == rid and doc["count"] == 1
    attempts = doc["deliveries"][0]["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status_code"] for a in attempts] == [500, 503, 502, 200]
    assert attempts[0]["error"].startswith("HTTP 500") and "receiver says no" in attempts[0]["error"]
    assert attempts[-1]["error"] is None
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in attempts)
    assert [a["at"] for a in attempts] == sorted(a["at"] for a in attempts)
    assert len(receiver.quiet_for(1.0)) == 4


def test_status_document_shows_the_delivery_state_move(fast: Server, receiver: Receiver) -> None:
    receiver.script = [500]
    c = fast.client()
    rid = _submit(c, receiver.url, agent_id="slow", metadata={"seconds": 0.6})
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = _delivery(c, rid)
        if not seen or seen[-1]["state"] != state["state"]:
            seen.append(state)
        if state["state"] == "delivered":
            break
        time.sleep(0.02)
    assert [s["state"] for s in seen] == ["pending", "retrying", "delivered"], seen
    pending, retrying, delivered = seen
    assert pending == {
        "mode": "webhook",
        "state": "pending",
        "attempts": 0,
        "last_status_code": None,
        "next_attempt_at": None,
    }
    assert retrying["attempts"] == 1 and retrying["last_status_code"] == 500
    assert retrying["next_attempt_at"] is not None and retrying["next_attempt_at"] > time.time() - 1
    assert delivered["attempts"] == 2 and delivered["last_status_code"] == 200
    assert delivered["next_attempt_at"] is None
    # a request without a webhook says so, and has no deliveries
    plain = c.post("/v1/chat", json={"message": "no hook", "mode": "sync"})
    assert plain.status_code == 200 and plain.json()["delivery"] == {"mode": "polling"}
    pid = plain.json()["request_id"]
    assert c.get(f"/v1/requests/{pid}").json()["delivery"] == {"mode": "polling"}
    assert c.get(f"/v1/requests/{pid}/deliveries").json() == {"request_id": pid, "deliveries": [], "count": 0}
    # the list keeps the mode string (one query per page, no delivery reads)
    listed = {d["request_id"]: d["delivery"] for d in c.get("/v1/requests").json()["requests"]}
    assert listed[rid] == "webhook" and listed[pid] == "polling"


def test_retries_run_out_then_an_admin_redelivers_under_a_new_id(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    srv = make_server(**{"async": {**FAST, "webhook_retries": 1}})
    receiver.script = [500, 500]
    c = srv.client()
    rid = _submit(c, receiver.url)
    first = receiver.wait_for(2)
    failed = _settled(c, rid)
    assert failed["state"] == "failed" and failed["attempts"] == 2 and failed["last_status_code"] == 500
    assert failed["next_attempt_at"] is None
    assert len(receiver.quiet_for(1.0)) == 2  # 1 + webhook_retries attempts, then it stops

    # only an admin may make errand POST again: a client key is told the admin key is missing
    denied = c.post(f"/v1/requests/{rid}/redeliver")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "UNAUTHORIZED"
    assert "X-Muxi-Admin-Key" in denied.json()["error"]["message"]
    admin = srv.admin()
    r = admin.post(f"/v1/requests/{rid}/redeliver")
    assert r.status_code == 202, r.text
    new = r.json()["delivery"]
    assert r.json()["request_id"] == rid and new["state"] == "pending" and new["attempts"] == []
    third = receiver.wait_for(3)[2]
    assert third.answered == 200 and third.webhook_id == new["webhook_id"]
    assert third.webhook_id != first[0].webhook_id
    assert json.loads(third.body)["request_id"] == rid and verify(
        third.body, third.headers, srv.webhook_secret
    )
    # the status document follows the newest delivery; the list shows both
    assert _settled(c, rid)["state"] == "delivered"
    deliveries = admin.get(f"/v1/requests/{rid}/deliveries").json()["deliveries"]
    assert [d["state"] for d in deliveries] == ["failed", "delivered"]
    assert [len(d["attempts"]) for d in deliveries] == [2, 1]


def test_redeliver_and_deliveries_refusals(server: Server, receiver: Receiver) -> None:
    c = server.client()
    admin = server.admin()
    running = c.post(
        "/v1/chat",
        json={"message": "x", "agent_id": "slow", "metadata": {"seconds": 3}, "webhook_url": receiver.url},
    ).json()["request_id"]
    r = admin.post(f"/v1/requests/{running}/redeliver")
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"  # not ended yet
    polled = c.post("/v1/chat", json={"message": "x", "mode": "sync"}).json()["request_id"]
    r = admin.post(f"/v1/requests/{polled}/redeliver")
    assert r.status_code == 409 and "webhook" in r.json()["error"]["message"]
    assert admin.post("/v1/requests/req_nope/redeliver").status_code == 404
    # deliveries: the owner and an admin see them; another client key sees nothing exists
    assert c.get(f"/v1/requests/{running}/deliveries").status_code == 200
    assert admin.get(f"/v1/requests/{running}/deliveries").status_code == 200
    other = server.client(OTHER_KEY).get(f"/v1/requests/{running}/deliveries")
    assert other.status_code == 404 and other.json()["error"]["code"] == "REQUEST_NOT_FOUND"
    assert server.client(None).get(f"/v1/requests/{running}/deliveries").status_code == 401
    # the formation alias serves the same routes
    assert c.get(f"/api/{FORMATION}/v1/requests/{running}/deliveries").json()["request_id"] == running
    assert c.delete(f"/v1/requests/{running}").status_code == 200


def test_cancelled_request_reports_cancelled(server: Server, receiver: Receiver) -> None:
    c = server.client()
    rid = _submit(c, receiver.url, agent_id="slow", metadata={"seconds": 20})
    until(lambda: c.get(f"/v1/requests/{rid}").json()["status"] == "processing")
    assert c.delete(f"/v1/requests/{rid}").json()["status"] == "cancelled"
    [hit] = receiver.wait_for(1)
    body = json.loads(hit.body)
    assert body["request_id"] == rid and body["status"] == "cancelled"
    assert "result" not in body and body["response"] == [] and body["error"] is None
    assert verify(hit.body, hit.headers, server.webhook_secret)


def test_failed_request_reports_its_error(server: Server, receiver: Receiver) -> None:
    c = server.client()
    rid = _submit(c, receiver.url, agent_id="fail", message="the impossible")
    [hit] = receiver.wait_for(1)
    body = json.loads(hit.body)
    assert body["request_id"] == rid and body["status"] == "failed" and body["response"] == []
    assert body["error"]["code"] == "processing_failed"  # what MUXI receivers read
    assert "cannot do 'the impossible'" in body["error"]["message"]
    assert body["error"]["retryable"] is False
    got = wait_for(c, rid)
    assert got["error"] == body["error"]  # one error shape: GET carries error.code too
    listed = c.get("/v1/requests").json()["requests"]
    assert next(r for r in listed if r["request_id"] == rid)["error"] == body["error"]


def test_formation_webhook_url_applies_and_whsec_secrets_work(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    srv = make_server(**{"async": {"webhook_url": receiver.url, "webhook_secret": WHSEC}})
    c = srv.client()
    r = c.post("/v1/chat", json={"message": "configured"})
    assert r.status_code == 202  # a webhook makes auto mode async
    assert r.json()["delivery"] == "webhook"
    [hit] = receiver.wait_for(1)
    assert json.loads(hit.body)["request_id"] == r.json()["request_id"]
    assert verify(hit.body, hit.headers, WHSEC)
    assert not verify(hit.body, hit.headers, ADMIN_KEY)  # the configured secret wins
    assert Webhook(WHSEC).verify(hit.body, hit.headers, json_parse=False) is None
    _plain_hmac_checks(hit, WHSEC.encode(), base64.b64decode(WHSEC.removeprefix("whsec_")))


BAD_URLS = [
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0177.0.0.1/hook",  # 127.0.0.1 in octal
    "http://10.0.0.7/hook",
    "ftp://example.com/hook",
    "http://user:pw@example.com/hook",
    "not a url",
]


def _trigger_folder(tmp_path: Path, front_matter: str = "") -> str:
    folder = tmp_path / "formation"
    (folder / "triggers").mkdir(parents=True)
    (folder / "triggers" / "ping.md").write_text(f"{front_matter}Ping ${{{{ data.who }}}}\n")
    return str(folder)


@pytest.mark.parametrize("url", BAD_URLS)
def test_ssrf_is_refused_at_submit_for_chat_and_triggers(
    url: str, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    srv = make_server(base_dir=_trigger_folder(tmp_path))
    c = srv.client()
    for path, body in (
        ("/v1/chat", {"message": "x", "webhook_url": url}),
        ("/v1/triggers/ping", {"data": {"who": "me"}, "webhook_url": url}),
    ):
        r = c.post(path, json=body)
        assert r.status_code == 422, (path, url, r.text)
        err = r.json()["error"]
        assert err["code"] == "INVALID_REQUEST" and "webhook_url" in err["message"]
    assert c.get("/v1/requests").json()["count"] == 0  # nothing was stored


def test_loopback_needs_the_allow_list(
    make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    srv = make_server(**{"async": {"webhook_allow_hosts": []}}, base_dir=_trigger_folder(tmp_path))
    c = srv.client()
    r = c.post("/v1/chat", json={"message": "x", "webhook_url": receiver.url})
    assert r.status_code == 422 and "webhook_allow_hosts" in r.json()["error"]["message"]
    r = c.post("/v1/triggers/ping", json={"data": {"who": "me"}, "webhook_url": receiver.url})
    assert r.status_code == 422 and "webhook_allow_hosts" in r.json()["error"]["message"]
    assert receiver.quiet_for(0.2) == []


def test_a_front_matter_webhook_url_is_checked_too(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    folder = _trigger_folder(tmp_path, "---\nwebhook_url: http://169.254.169.254/\n---\n")
    c = make_server(base_dir=folder).client()
    r = c.post("/v1/triggers/ping", json={"who": "me"})
    assert r.status_code == 422 and "169.254.169.254" in r.json()["error"]["message"]


def test_without_an_admin_key_webhooks_are_signed_with_the_generated_secret(
    make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    # no admin key and no async.webhook_secret: once refused ("webhooks are disabled"), now the
    # database's generated secret signs them, for chat and triggers alike
    srv = make_server(keys={"admin": []}, base_dir=_trigger_folder(tmp_path))
    c = srv.client()
    for path, body in (
        ("/v1/chat", {"message": "x", "webhook_url": receiver.url}),
        ("/v1/triggers/ping", {"data": {"who": "me"}, "webhook_url": receiver.url}),
    ):
        r = c.post(path, json=body)
        assert r.status_code == 202, r.text
    hits = receiver.wait_for(2)
    assert all(verify(h.body, h.headers, srv.webhook_secret) for h in hits)
