"""A client-chosen `request_id` is unique per owner (issue 9, item 7), over real HTTP on both
backends: bob choosing alice's id is accepted as bob's own request, nothing he can do with the
id tells him alice's exists (no 409/404 oracle), and each sees, cancels and follows only their
own. An admin sees both, each under its stored id (`<id>~<scope>`), and addresses either by it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.server import CLIENT_KEY, OTHER_KEY, Server, wait_for
from tests.support.sse_client import read_events

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, make_server: Callable[..., Server]) -> Server:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return make_server(storage={"url": url})
    return make_server()


def chat(c: httpx.Client, message: str, rid: str, **fields: object) -> httpx.Response:
    return c.post("/v1/chat", json={"message": message, "mode": "async", "request_id": rid, **fields})


def test_two_keys_choosing_one_id_each_get_their_own(api: Server) -> None:
    alice, bob = api.client(CLIENT_KEY), api.client(OTHER_KEY)
    a = chat(alice, "from alice", "job-1")
    assert a.status_code == 202, a.text
    # before bob has one: alice's id is unknown to him, like any unknown id
    unknown = bob.get("/v1/requests/job-1")
    never = bob.get("/v1/requests/job-never-used")
    assert unknown.status_code == never.status_code == 404
    assert unknown.json()["error"]["code"] == never.json()["error"]["code"] == "REQUEST_NOT_FOUND"
    assert bob.delete("/v1/requests/job-1").status_code == 404
    b = chat(bob, "from bob", "job-1")
    assert b.status_code == 202, b.text  # not 409: the id is his to choose
    assert a.json()["request_id"] == b.json()["request_id"] == "job-1"
    assert b.headers["location"] == "/v1/requests/job-1"
    assert wait_for(alice, "job-1")["result"]["text"] == "echo: from alice"
    assert wait_for(bob, "job-1")["result"]["text"] == "echo: from bob"
    last = read_events(bob, "/v1/requests/job-1/events").messages[-1]
    assert last.event == "completed" and "from bob" in str(last.data)
    assert [d["request_id"] for d in bob.get("/v1/requests").json()["requests"]] == ["job-1"]
    # his own duplicate is still a conflict, in his own namespace only
    dup = chat(bob, "again", "job-1")
    assert dup.status_code == 409 and "job-1" in dup.json()["error"]["message"]
    assert "~" not in dup.text


def test_same_key_other_user_is_another_owner(api: Server) -> None:
    u1, u2 = api.client(CLIENT_KEY, "u1"), api.client(CLIENT_KEY, "u2")
    assert chat(u1, "one", "shared").status_code == 202
    assert chat(u2, "two", "shared").status_code == 202
    assert wait_for(u1, "shared")["result"]["text"] == "echo: one"
    assert wait_for(u2, "shared")["result"]["text"] == "echo: two"


def test_choosing_anothers_generated_id_is_yours(api: Server) -> None:
    alice, bob = api.client(CLIENT_KEY), api.client(OTHER_KEY)
    generated = alice.post("/v1/chat", json={"message": "gen", "mode": "async"}).json()["request_id"]
    assert chat(bob, "mine", generated).status_code == 202
    assert wait_for(alice, generated)["result"]["text"] == "echo: gen"
    assert wait_for(bob, generated)["result"]["text"] == "echo: mine"


def test_admin_sees_both_under_stored_ids_and_addresses_them(api: Server) -> None:
    alice, bob, admin = api.client(CLIENT_KEY), api.client(OTHER_KEY), api.admin()
    for c, who in ((alice, "alice"), (bob, "bob")):
        assert chat(c, who, "twin").status_code == 202
        wait_for(c, "twin")
    listed = admin.get("/v1/requests").json()["requests"]
    stored = sorted(d["request_id"] for d in listed if d["request_id"].startswith("twin~"))
    assert len(stored) == 2 and stored[0] != stored[1]
    texts = {admin.get(f"/v1/requests/{s}").json()["result"]["text"] for s in stored}
    assert texts == {"echo: alice", "echo: bob"}
    ambiguous = admin.get("/v1/requests/twin")
    assert ambiguous.status_code == 404 and "<id>~<scope>" in ambiguous.json()["error"]["message"]
    # a client cannot reach another's request through its stored id either
    for s in stored:
        mine = alice.get(f"/v1/requests/{s}")
        assert mine.status_code in (200, 404)
        if mine.status_code == 200:
            assert mine.json()["result"]["text"] == "echo: alice" and mine.json()["request_id"] == "twin"


def test_text_that_is_no_id_is_404_on_both_backends(api: Server) -> None:
    c = api.client()
    for path in ("/v1/requests/a%00b", "/v1/requests/%F0%9F%92%A9", "/v1/requests/" + "x" * 200):
        for method in ("GET", "DELETE"):
            r = c.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
    assert api.admin().post("/v1/requests/a%00b/redeliver").status_code == 404
