"""The HTTP API end to end on PostgreSQL: the same routes the SQLite tests cover, on the
scale-out backend (chat sync/async, long-poll, cancel, triggers, webhooks, the event stream)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from errand.webhooks import verify
from tests.support.server import Server, wait_for
from tests.support.sse_client import read_events
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.postgres

TRIGGER = "---\nagent: echo\n---\nIssue: ${{ data.issue.title }}\n"


@pytest.fixture
def pg_api(make_server: Callable[..., Server], pg_fresh_url: str, tmp_path: Path) -> Server:
    folder = tmp_path / "formation"
    (folder / "triggers").mkdir(parents=True)
    (folder / "triggers" / "issue.md").write_text(TRIGGER)
    return make_server(
        storage={"url": pg_fresh_url},
        base_dir=str(folder),
        **{"async": {"webhook_initial_delay": 0.2, "webhook_max_delay": 0.3}},
    )


def test_chat_wait_cancel_and_list(pg_api: Server) -> None:
    c = pg_api.client()
    sync = c.post("/v1/chat", json={"message": "hi", "mode": "sync"})
    assert sync.status_code == 200 and sync.json()["result"]["text"] == "echo: hi"
    ack = c.post("/v1/chat", json={"message": "later", "mode": "async"}).json()
    done = c.get(f"/v1/requests/{ack['request_id']}", params={"wait": 10}).json()
    assert done["status"] == "completed" and done["result"]["text"] == "echo: later"
    slow = c.post("/v1/chat", json={"message": "30", "agent_id": "slow", "mode": "async"}).json()
    deadline = time.monotonic() + 10
    while c.get(f"/v1/requests/{slow['request_id']}").json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t0 = time.monotonic()
    cancel = c.delete(f"/v1/requests/{slow['request_id']}")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert c.get(f"/v1/requests/{slow['request_id']}").json()["status"] == "cancelled"
    assert time.monotonic() - t0 < 1.0
    ids = {d["request_id"] for d in c.get("/v1/requests").json()["requests"]}
    assert {ack["request_id"], slow["request_id"]} <= ids


def test_trigger_and_signed_webhook(pg_api: Server) -> None:
    c = pg_api.client()
    with receiving([500]) as receiver:  # the first attempt fails, the retry succeeds
        body = {"data": {"issue": {"title": "Crash"}}, "webhook_url": receiver.url}
        r = c.post("/v1/triggers/issue", json=body)
        assert r.status_code == 202, r.text
        rid = r.json()["request_id"]
        hits = receiver.wait_for(2, timeout=15)
    assert [h.answered for h in hits] == [500, 200]
    assert hits[0].webhook_id == hits[1].webhook_id and hits[0].body == hits[1].body
    assert verify(hits[1].body, hits[1].headers, pg_api.webhook_secret)
    doc = wait_for(c, rid)
    assert doc["result"]["text"] == "echo: Issue: Crash" and doc["trigger"] == "issue"
    deadline = time.monotonic() + 5
    while c.get(f"/v1/requests/{rid}").json()["delivery"].get("state") != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    attempts = c.get(f"/v1/requests/{rid}/deliveries").json()["deliveries"][0]["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 200]


def test_event_stream_replays_in_order(pg_api: Server) -> None:
    c = pg_api.client()
    rid = c.post("/v1/chat", json={"message": "x", "mode": "async"}).json()["request_id"]
    wait_for(c, rid)
    got = read_events(c, f"/v1/requests/{rid}/events")
    assert got.status == 200 and got.closed_by_server
    assert got.types[0] == "created" and got.types[-1] == "completed"
    assert got.ids == list(range(1, len(got.ids) + 1))
