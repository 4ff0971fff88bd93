"""`input` of GET /v1/requests/{id} over real HTTP, on SQLite and PostgreSQL: what was submitted
is shown to its owner and to admins and viewers, nowhere else (lists, sync answers, webhook
bodies, events stay small), never to another client, and not once purged."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from errand.api.schemas import RequestList, StatusDocument
from tests.support.server import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, ROLE_KEYS, VIEWER_KEY, Server, wait_for
from tests.support.webhook_receiver import receiving

MESSAGE = 'Compare the two offers\nline two — ünïcode "quoted"'
METADATA = {"ticket": "T-42", "nested": {"tags": ["a", "b"], "n": 3}}


@pytest.fixture
def start(make_server_each_backend: Callable[..., Server]) -> Callable[..., Server]:
    """A server with every role's key, on SQLite and on PostgreSQL."""
    return functools.partial(make_server_each_backend, keys=ROLE_KEYS)


def test_get_shows_the_submitted_input_to_owner_admin_and_viewer(start: Callable[..., Server]) -> None:
    srv = start(with_workers=False)
    c = srv.client(CLIENT_KEY, "u1")
    body = {
        "message": MESSAGE,
        "agent_id": "echo",
        "mode": "async",
        "metadata": METADATA,
        "session_id": "s-1",
        "priority": 2,
        "fairness_key": "team-a",
    }
    r = c.post("/v1/chat", json=body)
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    doc = c.get(f"/v1/requests/{rid}").json()
    StatusDocument.model_validate(doc)
    assert doc["input"] == {
        "message": MESSAGE,
        "metadata": METADATA,
        "session_id": "s-1",
        "trigger": None,
        "priority": 2,
        "fairness_key": "team-a",
        "mode": "async",
        "max_attempts": doc["input"]["max_attempts"],
        "estimated_seconds": doc["input"]["estimated_seconds"],
    }
    assert doc["input"]["max_attempts"] >= 1
    for key in (ADMIN_KEY, VIEWER_KEY):
        seen = srv.client(key, admin=key == ADMIN_KEY).get(f"/v1/requests/{rid}")
        assert seen.status_code == 200, seen.text
        assert seen.json()["input"]["message"] == MESSAGE
        assert seen.json()["input"]["metadata"] == METADATA
    # another client, or another user of the same key, sees nothing: 404 as for an unknown id
    for other in (srv.client(OTHER_KEY, "u1"), srv.client(CLIENT_KEY, "u2")):
        refused = other.get(f"/v1/requests/{rid}")
        assert refused.status_code == 404 and MESSAGE not in refused.text
    # the list stays a list of summaries
    listed = c.get("/v1/requests").json()
    RequestList.model_validate(listed)
    assert [d["request_id"] for d in listed["requests"]] == [rid]
    assert "input" not in listed["requests"][0]


def test_defaults_show_as_defaults_and_the_fairness_fingerprint_is_not_shown(
    start: Callable[..., Server],
) -> None:
    srv = start(with_workers=False)
    c = srv.client(CLIENT_KEY, "u1")
    r = c.post("/v1/chat", json={"message": "plain", "agent_id": "echo", "mode": "async"})
    rid = r.json()["request_id"]
    shown = c.get(f"/v1/requests/{rid}").json()["input"]
    assert shown["metadata"] == {} and shown["session_id"] is None
    assert shown["fairness_key"] is None  # the stored default names the key's fingerprint
    assert shown["priority"] == 3  # async's default (models.PRIORITY_BY_ORIGIN)


def test_a_trigger_request_shows_its_rendered_message(start: Callable[..., Server], tmp_path: Path) -> None:
    folder = tmp_path / "formation"
    (folder / "triggers").mkdir(parents=True)
    template = "Ticket ${{ data.id }}: ${{ data.title }}\n"
    (folder / "triggers" / "ticket.md").write_text(template, encoding="utf-8")
    srv = start(base_dir=str(folder))
    c = srv.client(CLIENT_KEY, "u1")
    r = c.post("/v1/triggers/ticket", json={"id": 7, "title": "Printer on fire"})
    assert r.status_code == 202, r.text
    doc = c.get(f"/v1/requests/{r.json()['request_id']}").json()
    StatusDocument.model_validate(doc)
    assert doc["kind"] == "trigger" and doc["input"]["trigger"] == "ticket"
    assert doc["input"]["message"].strip() == "Ticket 7: Printer on fire"
    assert doc["input"]["priority"] == 4  # a trigger's default


def test_sync_answers_webhook_bodies_and_events_carry_no_input(start: Callable[..., Server]) -> None:
    srv = start()
    c = srv.client(CLIENT_KEY, "u1")
    sync = c.post("/v1/chat", json={"message": MESSAGE, "agent_id": "echo", "mode": "sync"})
    assert sync.status_code == 200, sync.text
    assert "input" not in sync.json()
    with receiving() as receiver:
        rid = c.post(
            "/v1/chat",
            json={"message": MESSAGE, "agent_id": "echo", "mode": "async", "webhook_url": receiver.url},
        ).json()["request_id"]
        wait_for(c, rid)
        hook = receiver.wait_for(1)[0]
    assert "input" not in json.loads(hook.body)
    events = c.get(f"/v1/requests/{rid}/events", headers={"Accept": "text/event-stream"})
    assert events.status_code == 200 and '"input"' not in events.text
    assert c.get(f"/v1/requests/{rid}").json()["input"]["message"] == MESSAGE


def test_a_purged_request_has_no_input(start: Callable[..., Server]) -> None:
    srv = start()
    c = srv.client(CLIENT_KEY, "u1")
    r = c.post("/v1/chat", json={"message": MESSAGE, "agent_id": "echo", "mode": "sync"})
    rid = r.json()["request_id"]
    time.sleep(0.01)
    assert srv.run(srv.store.purge_expired(result_ttl=0.0, tombstone_ttl=3600.0)) >= 1
    for client in (c, srv.client(ADMIN_KEY, admin=True)):
        r = client.get(f"/v1/requests/{rid}")
        assert r.status_code == 410 and MESSAGE not in r.text
        assert r.json()["error"]["code"] == "REQUEST_EXPIRED"
