"""The console's data endpoints over real loopback HTTP, on SQLite and PostgreSQL: the list's
filters, the overview (its counts equal what the list shows), deliveries across requests, and
the bulk cancel and redeliver with their dry run and confirmation."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from errand.api.console_schemas import (
    AdminDeliveryList,
    BulkCancelled,
    BulkMatch,
    BulkRedelivered,
    OverviewDocument,
)
from errand.api.schemas import RequestList
from tests.support.server import (
    CLIENT_KEY,
    OTHER_KEY,
    ROLE_KEYS,
    VIEWER_KEY,
    Server,
    until,
    wait_for,
)
from tests.support.webhook_receiver import receiving

STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


@pytest.fixture
def start(make_server_each_backend: Callable[..., Server]) -> Callable[..., Server]:
    """A server with every role's key, on SQLite and on PostgreSQL."""
    return functools.partial(make_server_each_backend, keys=ROLE_KEYS)


def submit(srv: Server, agent: str = "echo", key: str = CLIENT_KEY, user: str = "u1", **body: Any) -> str:
    r = srv.client(key, user).post(
        "/v1/chat", json={"message": "hi", "agent_id": agent, "mode": "async", **body}
    )
    assert r.status_code == 202, r.text
    return str(r.json()["request_id"])


def listed(c: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /v1/requests with these filters."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = c.get("/v1/requests", params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = RequestList.model_validate(r.json())
        out += r.json()["requests"]
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_list_filters_over_http(start: Callable[..., Server]) -> None:
    srv = start(with_workers=False)
    t0 = time.time()
    a = [submit(srv, "echo", user="u1") for _ in range(3)]
    time.sleep(0.05)
    t1 = time.time()
    b = [submit(srv, "slow", key=OTHER_KEY, user="u2") for _ in range(2)]
    admin = srv.admin()
    assert {r["request_id"] for r in listed(admin, agent="echo")} == set(a)
    assert {r["request_id"] for r in listed(admin, user_id="u2")} == set(b)
    assert {r["request_id"] for r in listed(admin, since=t1)} == set(b)
    assert {r["request_id"] for r in listed(admin, since=t0, until=t1)} == set(a)
    assert listed(admin, agent="echo", status="completed") == []
    assert len(listed(admin, kind="chat", status="pending")) == 5
    assert listed(admin, kind="trigger") == []
    viewer = srv.client(VIEWER_KEY)
    assert {r["request_id"] for r in listed(viewer, agent="slow")} == set(b)
    page = admin.get("/v1/requests", params={"agent": "echo", "limit": 2}).json()
    rest = admin.get("/v1/requests", params={"agent": "echo", "cursor": page["next_cursor"]}).json()
    assert [r["request_id"] for r in page["requests"] + rest["requests"]] == a[::-1]
    for params, field in (
        ({"kind": "email"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"until": "-1"}, "until"),
        ({"since": "10", "until": "5"}, "until"),
        ({"user_id": "has space"}, "user_id"),
        ({"status": "done"}, "status"),
    ):
        r = admin.get("/v1/requests", params=params)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (params, r.text)
    r = srv.client(CLIENT_KEY).get("/v1/requests", params={"user_id": "u2"})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "user_id"


def test_the_overview_counts_equal_the_lists(start: Callable[..., Server]) -> None:
    srv = start()
    done = [submit(srv, "echo") for _ in range(3)]
    failed = [submit(srv, "fail", user="u2") for _ in range(2)]
    for rid in done + failed:
        wait_for(srv.admin(), rid)
    slow = submit(srv, "slow", metadata={"seconds": 5})
    viewer = srv.client(VIEWER_KEY)

    def running() -> dict[str, Any] | None:
        doc = viewer.get("/v1/admin/overview").json()
        items = [r for r in doc["running"] if r["request_id"] == slow and r["progress"]]
        return doc if items else None

    doc = until(running, timeout=10)
    OverviewDocument.model_validate(doc)
    [item] = [r for r in doc["running"] if r["request_id"] == slow]
    assert item["agent"] == "slow" and item["attempt"] == 1 and item["worker_id"]
    assert 0 < item["progress"]["percent"] < 100 and item["started_at"] <= doc["generated_at"]
    assert srv.admin().delete(f"/v1/requests/{slow}").status_code == 200
    wait_for(srv.admin(), slow)
    doc = viewer.get("/v1/admin/overview").json()
    OverviewDocument.model_validate(doc)
    for status in STATUSES:
        assert doc["queue"]["by_status"][status] == len(listed(viewer, status=status)), status
    assert doc["queue"]["by_status"] == {
        "pending": 0,
        "processing": 0,
        "input_required": 0,
        "completed": 3,
        "failed": 2,
        "cancelled": 1,
    }
    assert doc["queue"]["oldest_pending_age_seconds"] is None and doc["running"] == []
    stats = {a["agent"]: a for a in doc["agents"]}
    assert (stats["echo"]["completed"], stats["echo"]["failed"]) == (3, 0)
    assert (stats["fail"]["completed"], stats["fail"]["failed"], stats["fail"]["failure_rate"]) == (0, 2, 1.0)
    assert (
        stats["echo"]["p50_seconds"] is not None
        and stats["echo"]["p50_seconds"] <= stats["echo"]["p95_seconds"]
    )
    assert (
        len(stats["echo"]["per_minute"]) == 60
        and sum(p["completed"] for p in stats["echo"]["per_minute"]) == 3
    )
    assert [w["running"] for w in doc["workers"]] == [0] and doc["workers"][0]["pid"] > 0


def test_the_overview_queue_by_agent_and_user(start: Callable[..., Server]) -> None:
    srv = start(with_workers=False)
    for user in ("u1", "u1", "u2"):
        submit(srv, "echo", user=user)
    submit(srv, "slow", user="u3")
    doc = srv.admin().get("/v1/admin/overview").json()
    OverviewDocument.model_validate(doc)
    queue = doc["queue"]
    assert queue["by_status"]["pending"] == 4 == len(listed(srv.admin(), status="pending"))
    assert queue["by_agent"] == [
        {"agent": "echo", "pending": 3, "processing": 0},
        {"agent": "slow", "pending": 1, "processing": 0},
    ]
    assert queue["by_user"][0] == {"user_id": "u1", "pending": 2, "processing": 0}
    assert 0 <= queue["oldest_pending_age_seconds"] < 60
    assert srv.client(CLIENT_KEY).get("/v1/admin/overview").status_code == 401


def test_bulk_cancel_dry_run_confirmation_and_run(start: Callable[..., Server]) -> None:
    srv = start(with_workers=False)
    echo = [submit(srv, "echo") for _ in range(3)]
    other = submit(srv, "slow")
    admin = srv.admin()
    body: dict[str, Any] = {"filter": {"agent": "echo", "status": "pending"}}
    r = admin.post("/v1/admin/requests/cancel", json={**body, "dry_run": True})
    assert r.status_code == 200 and BulkMatch.model_validate(r.json()).matched == 3
    r = admin.post("/v1/admin/requests/cancel", json={**body, "dry_run": False})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "expect"
    r = admin.post("/v1/admin/requests/cancel", json={**body, "dry_run": False, "expect": 2})
    assert r.status_code == 409 and r.json()["error"]["details"] == {"matched": 3, "expect": 2}
    assert {d["status"] for d in listed(admin, agent="echo")} == {"pending"}  # nothing ran
    r = admin.post("/v1/admin/requests/cancel", json={**body, "dry_run": False, "expect": 3})
    assert r.status_code == 200 and BulkCancelled.model_validate(r.json()) == BulkCancelled(
        cancelled=3, skipped=0, remaining=0
    )
    assert {d["request_id"] for d in listed(admin, status="cancelled")} == set(echo)
    assert admin.get(f"/v1/requests/{other}").json()["status"] == "pending"
    r = admin.post("/v1/admin/requests/cancel", json={"filter": {"status": "completed"}})
    assert r.json() == {"matched": 0}
    for bad, field in (({"filter": {"kind": "x"}}, "kind"), ({"filter": {"colour": 1}}, "filter.colour")):
        r = admin.post("/v1/admin/requests/cancel", json=bad)
        assert r.status_code == 422, r.text
        details = r.json()["error"]["details"]
        assert (details["field"] if isinstance(details, dict) else details[0]["field"]) == field


def test_failed_deliveries_listed_and_redelivered_in_bulk(start: Callable[..., Server]) -> None:
    fast = {
        "webhook_initial_delay": 0.1,
        "webhook_max_delay": 0.2,
        "webhook_retries": 0,
        "webhook_timeout": 5,
    }
    srv = start(**{"async": {"threshold_seconds": 30, "webhook_allow_hosts": ["127.0.0.1"], **fast}})
    admin = srv.admin()
    with receiving([500, 500]) as receiver:
        ids = [submit(srv, "echo", webhook_url=receiver.url) for _ in range(2)]
        ok = submit(srv, "echo", webhook_url=receiver.url)
        receiver.wait_for(3)

        def settled() -> dict[str, Any] | None:
            doc = admin.get("/v1/admin/deliveries", params={"state": "failed"}).json()
            return doc if doc["count"] == 2 else None

        doc = until(settled, timeout=10)
        AdminDeliveryList.model_validate(doc)
        assert {d["request_id"] for d in doc["deliveries"]} == set(ids)
        assert all(d["attempts"][0]["status_code"] == 500 for d in doc["deliveries"])

        def delivered_one() -> list[str] | None:  # its 200 may be recorded after the failures
            found = admin.get("/v1/admin/deliveries", params={"state": "delivered"}).json()
            return [d["request_id"] for d in found["deliveries"]] or None

        assert until(delivered_one, timeout=10) == [ok]
        page = admin.get("/v1/admin/deliveries", params={"limit": 2}).json()
        assert page["count"] == 2 and page["next_cursor"]
        rest = admin.get("/v1/admin/deliveries", params={"cursor": page["next_cursor"]}).json()
        assert rest["count"] == 1 and rest["next_cursor"] is None
        r = admin.get("/v1/admin/deliveries", params={"state": "lost"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "state"

        flt = {"filter": {"state": "failed"}}
        assert admin.post("/v1/admin/deliveries/redeliver", json=flt).json() == {"matched": 2}
        r = admin.post("/v1/admin/deliveries/redeliver", json={**flt, "dry_run": False, "expect": 5})
        assert r.status_code == 409
        r = admin.post("/v1/admin/deliveries/redeliver", json={**flt, "dry_run": False, "expect": 2})
        assert BulkRedelivered.model_validate(r.json()) == BulkRedelivered(redelivered=2, skipped=0)
        receiver.wait_for(5)
        until(lambda: admin.post("/v1/admin/deliveries/redeliver", json=flt).json() == {"matched": 0})
        r = admin.post(
            "/v1/admin/deliveries/redeliver", json={"request_ids": [ok, "req_unknown000000000", "bad id"]}
        )
        assert r.json() == {"redelivered": 1, "skipped": 2}
        receiver.wait_for(6)
    r = admin.post(
        "/v1/admin/deliveries/redeliver", json={"request_ids": [ok], "filter": {"state": "failed"}}
    )
    assert r.status_code == 422
