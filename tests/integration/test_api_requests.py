"""GET/DELETE /v1/requests over real HTTP: status, long-poll, listing, cancel, ownership, expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import Server, until, wait_for


def submit(c: httpx.Client, message: str = "hi", **body: Any) -> str:
    r = c.post("/v1/chat", json={"message": message, "mode": "async", **body})
    assert r.status_code == 202, r.text
    request_id: str = r.json()["request_id"]
    return request_id


def slow(seconds: float, marker: Path | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"seconds": seconds}
    if marker is not None:
        meta["marker"] = str(marker)
    return {"agent_id": "slow", "metadata": meta}


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_status_shows_progress_while_processing(server: Server) -> None:
    c = server.client()
    rid = submit(c, **slow(5))

    def progressing() -> dict[str, Any] | None:
        doc: dict[str, Any] = c.get(f"/v1/requests/{rid}").json()
        return doc if doc["progress"] else None

    doc = until(progressing)
    assert doc["status"] == "processing"
    assert doc["started_at"] is not None and doc["completed_at"] is None
    progress = doc["progress"]
    assert progress["message"].startswith("working step")
    assert progress["total_steps"] == 20 and 0 < progress["percent"] < 100
    assert "result" not in doc and "error" not in doc
    assert c.delete(f"/v1/requests/{rid}").status_code == 200


def test_long_poll_returns_as_soon_as_done(server: Server) -> None:
    c = server.client()
    rid = submit(c, **slow(0.5))
    started = time.monotonic()
    r = c.get(f"/v1/requests/{rid}", params={"wait": 20})
    elapsed = time.monotonic() - started
    assert r.json()["status"] == "completed"
    assert elapsed < 2.0  # the agent takes 0.5 s; the wait allowed 20
    started = time.monotonic()
    assert c.get(f"/v1/requests/{rid}?wait=30").json()["status"] == "completed"
    assert time.monotonic() - started < 0.5  # already terminal: no waiting at all


def test_long_poll_times_out_with_the_current_state(server: Server) -> None:
    c = server.client()
    rid = submit(c, **slow(5))
    started = time.monotonic()
    doc = c.get(f"/v1/requests/{rid}", params={"wait": 0.4}).json()
    elapsed = time.monotonic() - started
    assert doc["status"] in ("pending", "processing")
    assert 0.35 < elapsed < 2.0
    c.delete(f"/v1/requests/{rid}")


def test_bad_wait_values_are_422(server: Server) -> None:
    c = server.client()
    rid = submit(c)
    for wait in ["abc", "-1", "nan", "inf", "1e999", "0x10"]:
        r = c.get(f"/v1/requests/{rid}", params={"wait": wait})
        assert r.status_code == 422, wait
        assert r.json()["error"]["details"]["field"] == "wait"


def test_unknown_request_is_404(server: Server) -> None:
    r = server.client().get("/v1/requests/req_doesnotexist")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "REQUEST_NOT_FOUND"
    assert server.client().delete("/v1/requests/req_doesnotexist").status_code == 404


def test_list_is_paginated_newest_first(server: Server) -> None:
    c = server.client(user="lister")
    ids = [submit(c, f"m{i}") for i in range(5)]
    for rid in ids:
        wait_for(c, rid)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/v1/requests", params=params).json()
        pages += 1
        assert page["count"] == len(page["requests"]) <= 2
        # list items are summaries: no result (GET /v1/requests/{id} has it)
        assert all(d["status"] == "completed" and "result" not in d for d in page["requests"])
        seen += [d["request_id"] for d in page["requests"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3
    everything = c.get("/v1/requests").json()
    assert everything["count"] == 5 and everything["next_cursor"] is None


def test_list_status_filter_and_bad_parameters(server: Server) -> None:
    c = server.client()
    ok = submit(c)
    failed = submit(c, agent_id="fail")
    wait_for(c, ok), wait_for(c, failed)
    only_failed = c.get("/v1/requests", params={"status": "failed"}).json()
    assert [d["request_id"] for d in only_failed["requests"]] == [failed]
    assert only_failed["requests"][0]["error"]["type"]
    assert c.get("/v1/requests", params={"status": "cancelled"}).json()["requests"] == []
    bad: list[dict[str, str | int]] = [
        {"status": "done"},
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"limit": "1e3"},
        {"cursor": "!!!"},
    ]
    for params in bad:
        r = c.get("/v1/requests", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "INVALID_REQUEST"


def test_cancel_pending_is_immediate_and_repeatable(make_server: Callable[..., Server]) -> None:
    c = make_server(with_workers=False).client()
    rid = submit(c)
    r = c.delete(f"/v1/requests/{rid}")
    assert r.status_code == 200
    assert r.json() == {"request_id": rid, "status": "cancelled", "cancellation": "immediate"}
    doc = c.get(f"/v1/requests/{rid}").json()
    assert doc["status"] == "cancelled" and doc["completed_at"] is not None
    again = c.delete(f"/v1/requests/{rid}")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_cancel_processing_stops_the_agent_within_a_second(server: Server, tmp_path: Path) -> None:
    c = server.client()
    marker = tmp_path / "marker.txt"
    rid = submit(c, **slow(2.5, marker))
    until(lambda: "started" in lines(marker))
    cancelled_at = time.monotonic()
    r = c.delete(f"/v1/requests/{rid}")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert r.json()["cancellation"] in ("cooperative", "immediate")
    until(lambda: "stopped" in lines(marker), timeout=1.0)
    assert time.monotonic() - cancelled_at < 1.0
    time.sleep(2.6 - (time.monotonic() - cancelled_at))  # past the moment the agent would have ended
    assert lines(marker) == ["started", "stopped"]
    doc = c.get(f"/v1/requests/{rid}").json()
    assert doc["status"] == "cancelled"
    assert "result" not in doc


def test_cancel_after_the_end_is_409_naming_the_status(server: Server) -> None:
    c = server.client()
    done = c.post("/v1/chat", json={"message": "hi", "mode": "sync"}).json()["request_id"]
    failed = c.post("/v1/chat", json={"message": "hi", "agent_id": "fail", "mode": "sync"}).json()[
        "request_id"
    ]
    for rid, status in [(done, "completed"), (failed, "failed")]:
        r = c.delete(f"/v1/requests/{rid}")
        assert r.status_code == 409
        err = r.json()["error"]
        assert err["code"] == "CONFLICT"
        assert status in err["message"]
        assert err["details"]["status"] == status
        assert c.get(f"/v1/requests/{rid}").json()["status"] == status


def test_ownership_other_users_and_keys_see_404_admin_sees_all(server: Server) -> None:
    from tests.support.server import OTHER_KEY

    alice = server.client(user="alice")
    rid = submit(alice)
    wait_for(alice, rid)
    for stranger in [server.client(user="mallory"), server.client(), server.client(OTHER_KEY, user="alice")]:
        r = stranger.get(f"/v1/requests/{rid}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "REQUEST_NOT_FOUND"
        assert stranger.delete(f"/v1/requests/{rid}").status_code == 404
        assert stranger.get("/v1/requests").json()["requests"] == []
    bob_id = submit(server.client(user="bob"))
    admin = server.admin()
    assert admin.get(f"/v1/requests/{rid}").json()["user_id"] == "alice"
    assert {d["request_id"] for d in admin.get("/v1/requests").json()["requests"]} == {rid, bob_id}
    only_bob = server.admin(user="bob").get("/v1/requests").json()["requests"]
    assert [d["request_id"] for d in only_bob] == [bob_id]
    assert admin.delete(f"/v1/requests/{bob_id}").status_code in (200, 409)


def test_expired_request_is_410(server: Server) -> None:
    c = server.client()
    rid = c.post("/v1/chat", json={"message": "hi", "mode": "sync"}).json()["request_id"]
    time.sleep(0.01)
    purged = server.run(server.store.purge_expired(result_ttl=0.0, tombstone_ttl=3600.0))
    assert purged >= 1
    for r in [
        c.get(f"/v1/requests/{rid}"),
        c.get(f"/v1/requests/{rid}?wait=5"),
        c.delete(f"/v1/requests/{rid}"),
    ]:
        assert r.status_code == 410
        assert r.json()["error"]["code"] == "REQUEST_EXPIRED"
    assert c.get("/v1/requests").json()["requests"] == []
    # someone else's tombstone looks like an unknown id: a 410 would tell that it exists
    other = server.client(user="mallory")
    for r in [other.get(f"/v1/requests/{rid}"), other.delete(f"/v1/requests/{rid}")]:
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "REQUEST_NOT_FOUND"
    assert server.admin().get(f"/v1/requests/{rid}").status_code == 410
