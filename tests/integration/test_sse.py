"""GET /v1/requests/{id}/events and POST /v1/chat with stream: true, over real loopback HTTP.

Replay, live following, resume by Last-Event-ID, many clients on one request, ownership,
keepalives, disconnects, and an API process that runs no workers streaming what a separate
worker does. Streams are read by tests/support/sse_client.py, a strict SSE parser.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ADMIN_KEY, CLIENT_KEY, FORMATION, Server, until, wait_for
from tests.support.sse_client import Message, aread_events, next_message, open_stream, read_events

pytestmark = pytest.mark.timeout(60)

AGENTS = [
    {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
    {"id": "ticker", "handler": "tests.support.agents:ticker"},
    {"id": "hold", "handler": "tests.support.agents:hold"},
]


@pytest.fixture
def sse_server(make_server: Callable[..., Server]) -> Server:
    return make_server(agents=AGENTS, server={"sse_heartbeat_seconds": 0.3})


def submit(c: httpx.Client, agent: str, **metadata: Any) -> str:
    r = c.post("/v1/chat", json={"message": "go", "mode": "async", "agent_id": agent, "metadata": metadata})
    assert r.status_code == 202, r.text
    request_id: str = r.json()["request_id"]
    return request_id


def events_url(request_id: str) -> str:
    return f"/v1/requests/{request_id}/events"


def assert_whole_log(messages: list[Message], request_id: str) -> None:
    """A complete stream: gapless ids from 1, created first (naming the request), one terminal last."""
    assert [m.id for m in messages] == list(range(1, len(messages) + 1))
    assert messages[0].event == "created" and messages[0].data["request_id"] == request_id
    assert messages[-1].event in ("completed", "failed", "cancelled")
    assert not any(m.event in ("completed", "failed", "cancelled") for m in messages[:-1])


def assert_same_outcome(event_data: dict[str, Any], doc: dict[str, Any]) -> None:
    """The terminal event's status document tells what GET /v1/requests/{id} tells."""
    for key in ("request_id", "status", "result", "error", "attempts", "completed_at", "duration_ms"):
        assert event_data.get(key) == doc.get(key), key


def open_streams_gauge(server: Server) -> float:
    text = server.client(key=None).get("/metrics").text
    match = re.search(r"^errand_sse_streams (\S+)$", text, re.MULTILINE)
    assert match is not None, "the open-streams gauge is exported"
    return float(match.group(1))


async def _task_count() -> int:
    return len(asyncio.all_tasks())


def test_replay_of_a_completed_request_then_close(sse_server: Server) -> None:
    c = sse_server.client()
    rid = submit(c, "ticker", ticks=5, interval=0.01)
    doc = wait_for(c, rid)
    assert doc["status"] == "completed"

    got = read_events(c, events_url(rid))

    assert got.status == 200 and got.closed_by_server
    assert got.headers["content-type"].startswith("text/event-stream")
    assert got.headers["cache-control"] == "no-cache"
    assert got.headers["x-accel-buffering"] == "no"
    assert_whole_log(got.messages, rid)
    assert got.types[1] == "started" and got.messages[1].data["attempt"] == 1
    assert [m.data["step"] for m in got.of("progress")] == [1, 2, 3, 4, 5]
    assert "".join(m.data["text"] for m in got.of("content")) == "<1><2><3><4><5>"
    assert_same_outcome(got.messages[-1].data, doc)  # the terminal event carries the document
    assert got.messages[-1].data["result"]["text"] == "ticked 5"
    # The same stream under the formation alias.
    alias = read_events(c, f"/api/{FORMATION}/v1/requests/{rid}/events")
    assert alias.messages == got.messages


def test_head_answers_the_headers_at_once(sse_server: Server, tmp_path: Path) -> None:
    c = sse_server.client()
    release = tmp_path / "release"
    rid = submit(c, "hold", release=str(release))
    try:
        r = c.head(events_url(rid), timeout=2)  # the request runs on: a stream would not end
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert c.head(events_url("req_unknown")).status_code == 404
    finally:
        release.touch()


def test_live_stream_follows_a_running_request_to_its_end(sse_server: Server, tmp_path: Path) -> None:
    c = sse_server.client()
    release = tmp_path / "release"
    rid = submit(c, "hold", release=str(release))
    try:
        with open_stream(c, events_url(rid)) as items:
            assert next_message(items).event == "created"
            assert next_message(items).event == "started"
            assert c.get(f"/v1/requests/{rid}").json()["status"] == "processing"
            release.touch()  # only now can the rest happen: what follows is live
            rest = [next_message(items), next_message(items)]
            assert [m.event for m in rest] == ["progress", "completed"]
            assert rest[0].data["message"] == "released"
            assert rest[1].data["status"] == "completed" and rest[1].data["result"]["text"] == "released"
            assert list(items) == []  # the server closed the stream after the terminal event
    finally:
        release.touch()


def test_live_progress_arrives_in_order(sse_server: Server) -> None:
    c = sse_server.client()
    rid = submit(c, "ticker", ticks=30, interval=0.03)
    got = read_events(c, events_url(rid))  # opened at once: most of it is live
    assert got.closed_by_server
    assert_whole_log(got.messages, rid)
    steps = [m.data["step"] for m in got.of("progress")]
    assert steps == list(range(1, 31))
    assert "".join(m.data["text"] for m in got.of("content")) == "".join(f"<{i}>" for i in range(1, 31))
    assert got.messages[-1].data["result"]["text"] == "ticked 30"


def test_resume_with_last_event_id_loses_and_repeats_nothing(sse_server: Server) -> None:
    c = sse_server.client()
    rid = submit(c, "ticker", ticks=40, interval=0.02)
    first = read_events(c, events_url(rid), stop_after=7)  # a client that drops mid-stream
    assert not first.closed_by_server and len(first.messages) == 7
    second = read_events(c, events_url(rid), headers={"Last-Event-ID": str(first.ids[-1])})
    assert second.closed_by_server
    wait_for(c, rid)
    full = read_events(c, events_url(rid))
    assert first.messages + second.messages == full.messages
    assert_whole_log(full.messages, rid)

    by_query = read_events(c, events_url(rid) + "?last_event_id=20")
    assert by_query.messages == full.messages[20:]
    # EventSource keeps its URL and adds the header when it reconnects: the header wins.
    both = read_events(c, events_url(rid) + "?last_event_id=3", headers={"Last-Event-ID": "30"})
    assert both.messages == full.messages[30:]


def test_stream_opened_at_or_after_the_end_closes_at_once(sse_server: Server) -> None:
    c = sse_server.client()
    rid = submit(c, "echo")
    wait_for(c, rid)
    full = read_events(c, events_url(rid))
    last = full.ids[-1]
    for after in (str(last), "999999"):  # at the end; beyond it (not an id we sent)
        started = time.monotonic()
        got = read_events(c, events_url(rid), headers={"Last-Event-ID": after})
        assert got.status == 200 and got.closed_by_server and got.messages == []
        assert time.monotonic() - started < 2.0
    for bad in ("abc", "-1", "1.5", "9" * 40):
        r = c.get(events_url(rid), headers={"Last-Event-ID": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"]["field"] == "Last-Event-ID"
    r = c.get(events_url(rid), params={"last_event_id": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "last_event_id"


def test_streams_follow_the_ownership_rule(sse_server: Server) -> None:
    owner = sse_server.client(user="alice")
    rid = submit(owner, "echo")
    wait_for(owner, rid)
    assert read_events(owner, events_url(rid)).closed_by_server
    for stranger in (
        sse_server.client(user="bob"),  # same key, another user
        sse_server.client(key="client-key-bbbbbbbb", user="alice"),  # another key
    ):
        r = stranger.get(events_url(rid))
        assert r.status_code == 404 and r.json()["error"]["code"] == "REQUEST_NOT_FOUND"
    assert sse_server.client(key=None).get(events_url(rid)).status_code == 401
    assert owner.get(events_url("req_does_not_exist")).status_code == 404
    admin = read_events(sse_server.client(ADMIN_KEY, admin=True), events_url(rid))
    assert admin.closed_by_server and admin.types[-1] == "completed"


def test_chat_with_stream_true_answers_with_the_new_requests_stream(sse_server: Server) -> None:
    c = sse_server.client()
    body = {"message": "go", "agent_id": "ticker", "stream": True, "metadata": {"ticks": 3}}
    got = read_events(c, "/v1/chat", method="POST", json_body=body)
    assert got.status == 200 and got.closed_by_server
    rid = got.headers["x-request-id"]
    assert got.headers["location"] == f"/v1/requests/{rid}"
    assert_whole_log(got.messages, rid)
    assert [m.data["step"] for m in got.of("progress")] == [1, 2, 3]
    doc = c.get(f"/v1/requests/{rid}").json()
    assert doc["status"] == "completed"
    assert_same_outcome(got.messages[-1].data, doc)
    # The formation alias and an explicit sync mode: still a stream (it is its own wait).
    body = {"message": "hi", "stream": True, "mode": "sync"}
    alias = read_events(c, f"/api/{FORMATION}/v1/chat", method="POST", json_body=body)
    assert alias.headers["location"] == f"/api/{FORMATION}/v1/requests/{alias.headers['x-request-id']}"
    assert alias.types[0] == "created" and alias.types[-1] == "completed"
    assert alias.messages[-1].data["result"]["text"] == "echo: hi"


def test_keepalive_comments_fill_silences(sse_server: Server, tmp_path: Path) -> None:
    c = sse_server.client()
    release = tmp_path / "release"
    rid = submit(c, "hold", release=str(release))
    try:
        started = time.monotonic()
        got = read_events(c, events_url(rid), stop_after_comments=3)
        elapsed = time.monotonic() - started
        assert got.comments == ["keepalive"] * 3
        assert got.types == ["created", "started"]
        assert 0.6 <= elapsed < 5.0  # three silences of sse_heartbeat_seconds (0.3 s)
    finally:
        release.touch()
    assert wait_for(c, rid)["status"] == "completed"


def test_a_client_that_goes_away_ends_its_stream_promptly(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    # A heartbeat far away: the stream must notice the disconnect without writing anything.
    sse_server = make_server(agents=AGENTS, server={"sse_heartbeat_seconds": 60})
    c = sse_server.client()
    release = tmp_path / "release"
    rid = submit(c, "hold", release=str(release))
    try:
        until(lambda: c.get(f"/v1/requests/{rid}").json()["status"] == "processing")
        tasks_before = sse_server.run(_task_count())
        gauge_before = open_streams_gauge(sse_server)
        with open_stream(c, events_url(rid)) as items:
            assert next_message(items).event == "created"
            assert open_streams_gauge(sse_server) == gauge_before + 1
        # Disconnected while the stream sleeps between heartbeats: it must not wait for one.
        until(lambda: open_streams_gauge(sse_server) == gauge_before, timeout=1.0)
        until(lambda: sse_server.run(_task_count()) <= tasks_before, timeout=1.0)
    finally:
        release.touch()
    assert wait_for(c, rid)["status"] == "completed"


def test_200_concurrent_clients_receive_the_identical_sequence(sse_server: Server) -> None:
    c = sse_server.client()
    rid = submit(c, "ticker", ticks=50, interval=0.03)

    async def many() -> list[Any]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        headers = {"X-Muxi-Client-Key": CLIENT_KEY}
        async with httpx.AsyncClient(
            base_url=sse_server.base, headers=headers, limits=limits, timeout=30
        ) as ac:
            return await asyncio.gather(*(aread_events(ac, events_url(rid)) for _ in range(200)))

    started = time.monotonic()
    results = asyncio.run(many())
    elapsed = time.monotonic() - started
    assert elapsed < 30
    assert all(r.status == 200 and r.closed_by_server for r in results)
    reference = results[0].messages
    assert_whole_log(reference, rid)
    assert len(results[0].of("progress")) == 50
    assert all(r.messages == reference for r in results)


def test_api_without_workers_streams_live_work_of_a_separate_worker(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    # Two apps on one SQLite file, each with its own store: only the second runs workers.
    api = make_server(with_workers=False, agents=AGENTS, server={"sse_heartbeat_seconds": 0.3})
    worker = make_server(with_workers=True, agents=AGENTS)
    c = api.client()
    release = tmp_path / "release"
    rid = submit(c, "hold", release=str(release))
    try:
        with open_stream(c, events_url(rid)) as items:
            assert next_message(items).event == "created"
            started = next_message(items)  # written by the other app's worker
            assert started.event == "started"
            release.touch()
            rest = [next_message(items), next_message(items)]
            assert [m.event for m in rest] == ["progress", "completed"]
            assert rest[1].data["result"]["text"] == "released"
            assert list(items) == []
    finally:
        release.touch()
    assert worker.client().get(f"/v1/requests/{rid}").json()["status"] == "completed"


def test_follow_false_sends_what_happened_so_far_then_closes(sse_server: Server, tmp_path: Path) -> None:
    c = sse_server.client()
    release = tmp_path / "release"
    rid = submit(c, "hold", release=str(release))
    try:
        until(lambda: c.get(f"/v1/requests/{rid}").json()["status"] == "processing" or None)
        so_far = read_events(c, events_url(rid) + "?follow=false")
        assert so_far.closed_by_server  # not held open waiting for the rest
        assert [m.event for m in so_far.messages] == ["created", "started"]
        after = read_events(c, events_url(rid) + "?follow=0", headers={"Last-Event-ID": "1"})
        assert [m.event for m in after.messages] == ["started"]
    finally:
        release.touch()
    wait_for(c, rid)
    ended = read_events(c, events_url(rid) + "?follow=false")
    assert ended.messages == read_events(c, events_url(rid)).messages  # all of it, once it ended
    bad = c.get(events_url(rid) + "?follow=maybe")
    assert bad.status_code == 422 and bad.json()["error"]["details"] == {"field": "follow"}
