"""POST /v1/triggers/{name} and GET /v1/triggers over real HTTP, with trigger files on disk.

The formation folder is a tmp directory with a `triggers/` folder; the server loads it at
startup, renders templates with the posted data, and runs them through the test agents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from errand.agents.registry import AgentRegistry
from errand.api.triggers import load_formation_triggers
from errand.config import build_config
from errand.errors import ConfigError
from tests.support.server import FORMATION, REPO, Server, formation, wait_for

TRIGGERS = {
    "github-issue": """\
---
description: Triage a new GitHub issue
agent: echo
---
Issue #${{ data.issue.number }} in ${{ data.repository.full_name }}: ${{ data.issue.title }}
Labels: ${{ data.issue.labels.0.name }} / by ${{ data.issue.user.login }}
""",
    "quick": """\
---
use_async: false
---
Quick ${{ data.what }}
""",
    "stripe": "Stripe ${{ data.type }} for ${{ data.data.object.customer }}\n",
    "slowpoke": """\
---
agent: slow
use_async: false
---
Slowly ${{ data.what }}
""",
    "optional": "Hello ${{ data.name | default('stranger') }}\n",
}

GITHUB_PAYLOAD: dict[str, Any] = {
    "action": "opened",
    "issue": {
        "number": 42,
        "title": "Crash on start",
        "labels": [{"name": "bug"}, {"name": "p1"}],
        "user": {"login": "alice"},
        "body": None,
    },
    "repository": {"full_name": "octo/repo"},
    "sender": {"login": "alice"},
}
GITHUB_TEXT = "Issue #42 in octo/repo: Crash on start\nLabels: bug / by alice"


def write_triggers(folder: Path, triggers: dict[str, str]) -> str:
    (folder / "triggers").mkdir(parents=True, exist_ok=True)
    for name, text in triggers.items():
        (folder / "triggers" / f"{name}.md").write_text(text, encoding="utf-8")
    return str(folder)


@pytest.fixture
def srv(make_server: Callable[..., Server], tmp_path: Path) -> Server:
    folder = write_triggers(tmp_path / "formation", TRIGGERS)
    return make_server(base_dir=folder, **{"async": {"sync_wait_seconds": 1.0}})


def test_a_raw_github_payload_posts_straight_in(srv: Server) -> None:
    c = srv.client()
    r = c.post("/v1/triggers/github-issue", json=GITHUB_PAYLOAD)
    assert r.status_code == 202, r.text  # triggers default to async
    ack = r.json()
    assert ack["status"] == "pending" and ack["delivery"] == "polling"
    assert isinstance(ack["estimated_seconds"], float) and ack["estimated_seconds"] > 0  # as chat
    assert r.headers["location"] == ack["poll_url"] == f"/v1/requests/{ack['request_id']}"
    doc = wait_for(c, ack["request_id"])
    assert doc["status"] == "completed" and doc["result"]["text"] == f"echo: {GITHUB_TEXT}"
    assert (doc["kind"], doc["trigger"], doc["agent"]) == ("trigger", "github-issue", "echo")


def test_the_envelope_form_gives_the_same_message_and_its_settings(srv: Server) -> None:
    c = srv.client()
    body = {"data": GITHUB_PAYLOAD, "session_id": "sess-9", "use_async": False}
    r = c.post("/v1/triggers/github-issue", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["text"] == f"echo: {GITHUB_TEXT}"
    assert r.json()["session_id"] == "sess-9" and r.json()["delivery"] == {"mode": "polling"}


def test_a_payload_with_its_own_data_key_is_taken_whole(srv: Server) -> None:
    # a Stripe event has `data` beside `id`, `type`...: it is the payload, not an envelope
    event = {"id": "evt_1", "type": "invoice.paid", "data": {"object": {"customer": "cus_7"}}}
    c = srv.client()
    doc = wait_for(c, c.post("/v1/triggers/stripe", json=event).json()["request_id"])
    assert doc["result"]["text"] == "echo: Stripe invoice.paid for cus_7"
    # and a payload's own `use_async` is data, not a setting: still async (202)
    r = c.post("/v1/triggers/stripe", json={**event, "use_async": False})
    assert r.status_code == 202


def test_missing_fields_are_named(srv: Server) -> None:
    c = srv.client()
    broken: dict[str, Any] = {**GITHUB_PAYLOAD, "issue": {**GITHUB_PAYLOAD["issue"]}}
    del broken["issue"]["title"]
    r = c.post("/v1/triggers/github-issue", json={"data": broken})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "INVALID_REQUEST" and "data.issue.title" in err["message"]
    broken["issue"]["title"], broken["issue"]["labels"] = "Back", []
    r = c.post("/v1/triggers/github-issue", json=broken)
    assert r.status_code == 422 and "data.issue.labels[0]" in r.json()["error"]["message"]
    # an optional field may be absent; an empty body is an empty payload
    r = c.post("/v1/triggers/optional", json={"data": {}, "use_async": False})
    assert r.json()["result"]["text"] == "echo: Hello stranger"
    assert c.post("/v1/triggers/optional").status_code == 202
    assert c.get("/v1/requests").json()["count"] == 2  # the refused ones stored nothing


def test_bad_envelopes_and_bodies(srv: Server) -> None:
    c = srv.client()
    r = c.post("/v1/triggers/quick", json={"data": {"what": "x"}, "use_async": "no"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "use_async"
    r = c.post("/v1/triggers/quick", json={"data": ["not", "an", "object"]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "data"
    r = c.post("/v1/triggers/quick", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert c.post("/v1/triggers/quick", json=[1, 2]).status_code == 422
    assert srv.client(None).post("/v1/triggers/quick", json={"what": "x"}).status_code == 401


def test_unknown_trigger_is_404_without_paths(srv: Server, tmp_path: Path) -> None:
    c = srv.client()
    for name in ("nope", "..%2Fformation", "quick.md"):
        r = c.post(f"/v1/triggers/{name}", json={"data": {}})
        assert r.status_code == 404, name
        assert r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
        assert str(tmp_path) not in r.text and "triggers/" not in r.text
    assert c.get("/v1/triggers/nope").status_code == 404


def test_sync_and_async_decisions(srv: Server) -> None:
    c = srv.client()
    # front matter use_async: false -> waits and answers 200 with the status document
    r = c.post("/v1/triggers/quick", json={"data": {"what": "one"}})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert r.json()["result"]["text"] == "echo: Quick one"
    # the body overrides the front matter
    r = c.post("/v1/triggers/quick", json={"data": {"what": "two"}, "use_async": True})
    assert r.status_code == 202
    # the query string is never read (MUXI's SDK always sends ?async=false)
    r = c.post("/v1/triggers/github-issue?async=false&use_async=false", json=GITHUB_PAYLOAD)
    assert r.status_code == 202
    # sync work that outlives async.sync_wait_seconds (1 s here) answers 202 and goes on
    r = c.post("/v1/triggers/slowpoke", json={"what": "now"})
    assert r.status_code == 202 and r.json()["status"] in ("pending", "processing")
    assert wait_for(c, r.json()["request_id"])["result"]["text"] == "slow: Slowly now"


def test_idempotency_keys_replay_the_original(srv: Server) -> None:
    c = srv.client(user="idem")
    headers = {"X-Muxi-Idempotency-Key": "evt-123"}
    first = c.post("/v1/triggers/github-issue", json=GITHUB_PAYLOAD, headers=headers)
    again = c.post("/v1/triggers/github-issue", json=GITHUB_PAYLOAD, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["request_id"] == first.json()["request_id"]
    # through the formation alias too (the scope is the canonical /v1 path)
    alias = c.post(f"/api/{FORMATION}/v1/triggers/github-issue", json=GITHUB_PAYLOAD, headers=headers)
    assert alias.json()["request_id"] == first.json()["request_id"]
    # a different body under the same key is a client error
    other = {**GITHUB_PAYLOAD, "action": "closed"}
    r = c.post("/v1/triggers/github-issue", json=other, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_REQUEST"
    # the same key on another trigger (or on chat) is another request
    r = c.post("/v1/triggers/quick", json={"what": "x"}, headers=headers)
    assert r.status_code == 200 and r.json()["request_id"] != first.json()["request_id"]
    # a sync replay answers as the original did: 200 with the result
    sync = {"X-Muxi-Idempotency-Key": "evt-sync"}
    one = c.post("/v1/triggers/quick", json={"what": "y"}, headers=sync)
    two = c.post("/v1/triggers/quick", json={"what": "y"}, headers=sync)
    assert one.status_code == two.status_code == 200 and one.json() == two.json()
    assert c.get("/v1/requests").json()["count"] == 3


def test_listing_shows_names_and_fields_but_no_paths(srv: Server, tmp_path: Path) -> None:
    c = srv.client()
    r = c.get("/v1/triggers")
    assert r.status_code == 200
    listing = r.json()
    assert listing["formation_id"] == FORMATION and listing["count"] == len(TRIGGERS)
    by_name = {t["name"]: t for t in listing["triggers"]}
    assert set(by_name) == set(TRIGGERS)
    assert by_name["github-issue"] == {
        "name": "github-issue",
        "description": "Triage a new GitHub issue",
        "fields": [
            "issue.number",
            "repository.full_name",
            "issue.title",
            "issue.labels[0].name",
            "issue.user.login",
        ],
        "agent": "echo",
        "use_async": None,
    }
    assert by_name["quick"]["use_async"] is False
    assert str(tmp_path) not in r.text and ".md" not in r.text and "${{" not in r.text
    one = c.get(f"/api/{FORMATION}/v1/triggers/quick")
    assert one.status_code == 200 and one.json() == by_name["quick"]
    assert srv.client(None).get("/v1/triggers").status_code == 401


def test_a_server_without_triggers_lists_none(server: Server) -> None:
    c = server.client()
    assert c.get("/v1/triggers").json() == {"formation_id": FORMATION, "triggers": [], "count": 0}
    assert c.post("/v1/triggers/anything", json={}).status_code == 404


def test_startup_refuses_triggers_that_cannot_run(tmp_path: Path) -> None:
    def check(triggers: dict[str, str], **sections: Any) -> None:
        folder = write_triggers(tmp_path / f"f{len(list(tmp_path.iterdir()))}", triggers)
        config = build_config(formation(tmp_path, **sections), env={}, base_dir=str(REPO))
        config = config.model_copy(update={"base_dir": folder})
        load_formation_triggers(config, AgentRegistry.from_config(config))

    check({"fine": "---\nagent: slow\n---\nok\n"})
    with pytest.raises(ConfigError, match=r"triggers/ghost\.md: agent 'nobody' is not configured"):
        check({"ghost": "---\nagent: nobody\n---\nhi\n"})
    check({"hooked": "---\nwebhook_url: https://example.com/h\n---\nhi\n"}, keys={"admin": []})  # signable
    with pytest.raises(ConfigError, match=r"triggers/bad\.md"):
        check({"bad": "---\nunknown_key: 1\n---\nhi\n"})
