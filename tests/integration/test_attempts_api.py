"""GET /v1/requests/{id}/attempts, the SDK's `attempts()`, `errand status ID --attempts` and the
error detail of `retry`/`failed` events, over real loopback HTTP on SQLite and PostgreSQL.

The owner sees each attempt's outcome and error; an admin also sees the traceback; nobody sees
it in the status document or the event stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from errand.cli import app
from errand.client import AsyncClient, Client
from tests.support.server import ADMIN_KEY, CLIENT_KEY, FORMATION, OTHER_KEY, Server, until, wait_for
from tests.support.sse_client import read_events

AGENTS = [
    {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
    {"id": "permanent", "handler": "tests.support.agents:permanent"},
    {"id": "flaky", "handler": "tests.support.agents:flaky"},
    {"id": "slow", "handler": "tests.support.agents:slow_steps"},
]
RETRY = {"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.1, "jitter": 0}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, make_server: Callable[..., Server]) -> Server:
    storage: dict[str, Any] = {}
    if request.param == "postgres":
        storage = {"storage": {"url": request.getfixturevalue("pg_fresh_url")}}
    return make_server(agents=AGENTS, workflow={"task_timeout": 30, "retry": RETRY}, **storage)


def submit(srv: Server, agent: str, message: str = "x", **body: Any) -> str:
    r = srv.client().post("/v1/chat", json={"message": message, "agent_id": agent, "mode": "async", **body})
    assert r.status_code == 202, r.text
    request_id: str = r.json()["request_id"]
    return request_id


def attempts_of(client: Any, request_id: str, prefix: str = "") -> list[dict[str, Any]]:
    r = client.get(f"{prefix}/v1/requests/{request_id}/attempts")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["count"] == len(body["attempts"])
    items: list[dict[str, Any]] = body["attempts"]
    return items


def test_a_failure_shows_its_message_to_the_owner_and_its_traceback_to_an_admin(api: Server) -> None:
    request_id = submit(api, "permanent", "bad")
    doc = wait_for(api.client(), request_id)
    assert doc["status"] == "failed"
    assert doc["error"] == {
        "code": "processing_failed",
        "type": "ValueError",
        "message": "cannot parse 'bad'",
        "retryable": False,
    }
    [mine] = attempts_of(api.client(), request_id)
    assert (mine["attempt"], mine["outcome"]) == (1, "failed")
    assert mine["error"] == {"type": "ValueError", "message": "cannot parse 'bad'"}
    assert "traceback" not in mine and mine["worker_id"].startswith("wrk")
    assert mine["ended_at"] >= mine["started_at"] and mine["duration_ms"] >= 0
    [seen] = attempts_of(api.admin(), request_id, prefix=f"/api/{FORMATION}")
    traceback = seen.pop("traceback")
    assert seen == mine
    assert traceback.startswith("Traceback (most recent call last):")
    assert 'in permanent\n    raise ValueError(f"cannot parse {message!r}")' in traceback
    assert traceback.rstrip().endswith("ValueError: cannot parse 'bad'")


def test_another_owner_and_unknown_ids_get_404(api: Server) -> None:
    request_id = submit(api, "echo")
    wait_for(api.client(), request_id)
    for client, path in (
        (api.client(OTHER_KEY), f"/v1/requests/{request_id}/attempts"),
        (api.client(), "/v1/requests/req_unknown/attempts"),
        (api.client(), f"/api/other-formation/v1/requests/{request_id}/attempts"),
    ):
        r = client.get(path)
        assert r.status_code == 404, r.text
        assert set(r.json()["error"]) == {"code", "message", "details"}
    assert api.client(key=None).get(f"/v1/requests/{request_id}/attempts").status_code == 401
    [done] = attempts_of(api.client(), request_id)
    assert (done["outcome"], done["error"]) == ("completed", None)


def test_retry_then_success_and_the_events_carry_the_error_without_traceback(api: Server) -> None:
    request_id = submit(api, "flaky")  # fails twice, then succeeds
    assert wait_for(api.client(), request_id)["status"] == "completed"
    first, second, third = attempts_of(api.admin(), request_id)
    outcomes = [(a["attempt"], a["outcome"]) for a in (first, second, third)]
    assert outcomes == [(1, "retried"), (2, "retried"), (3, "completed")]
    assert first["error"] == {"type": "TransientError", "message": "provider busy (attempt 1)"}
    assert "in flaky" in first["traceback"] and "in flaky" in second["traceback"]
    assert third["traceback"] is None and third["error"] is None
    stream = read_events(api.client(), f"/v1/requests/{request_id}/events")
    retries = stream.of("retry")
    assert [m.data["attempt"] for m in retries] == [1, 2]
    assert retries[0].data["error"] == {
        "type": "TransientError",
        "message": "provider busy (attempt 1)",
        "retryable": True,
    }
    assert not any("traceback" in json.dumps(m.data).lower() for m in stream.messages)


def test_the_failed_event_names_the_attempt_and_error(api: Server) -> None:
    request_id = submit(api, "permanent", "nope")
    wait_for(api.client(), request_id)
    for client in (api.client(), api.admin()):  # events never carry a traceback, for anyone
        stream = read_events(client, f"/v1/requests/{request_id}/events")
        [failed] = stream.of("failed")
        assert failed.data["attempt"] == 1
        error = {
            "code": "processing_failed",
            "type": "ValueError",
            "message": "cannot parse 'nope'",
            "retryable": False,
        }
        assert failed.data["error"] == error
        assert not any("Traceback" in json.dumps(m.data) for m in stream.messages)


def test_a_cancel_ends_the_running_attempt_cancelled(api: Server) -> None:
    request_id = submit(api, "slow", "30")
    c = api.client()
    until(lambda: attempts_of(c, request_id))
    assert c.delete(f"/v1/requests/{request_id}").status_code == 200
    [attempt] = attempts_of(c, request_id)
    assert attempt["outcome"] == "cancelled" and attempt["ended_at"] is not None


async def test_sdk_twins_read_attempts(api: Server) -> None:
    request_id = submit(api, "permanent", "sdk")
    wait_for(api.client(), request_id)
    with Client(api.base, client_key=CLIENT_KEY) as owner:
        [mine] = owner.attempts(request_id)
    assert (mine.attempt, mine.outcome, mine.traceback) == (1, "failed", None)
    assert mine.error is not None
    assert (mine.error.type, mine.error.message) == ("ValueError", "cannot parse 'sdk'")
    async with AsyncClient(api.base, admin_key=ADMIN_KEY, formation_id=FORMATION) as admin:
        [seen] = await admin.attempts(request_id)
    assert seen.outcome == "failed" and seen.traceback is not None and "in permanent" in seen.traceback
    assert seen.duration_ms == mine.duration_ms and seen.worker_id == mine.worker_id


def test_cli_status_attempts_table_and_json(api: Server) -> None:
    request_id = submit(api, "flaky")  # fails twice, then succeeds
    wait_for(api.client(), request_id)
    env = {"ERRAND_URL": api.base, "ERRAND_CLIENT_KEY": CLIENT_KEY, "COLUMNS": "200"}
    table = CliRunner().invoke(app, ["status", request_id, "--attempts"], env=env)
    assert table.exit_code == 0, table.output
    assert "retried" in table.stdout and "completed" in table.stdout
    assert "TransientError: provider busy (attempt 1)" in table.stdout
    assert "Traceback" not in table.stdout
    as_json = CliRunner().invoke(app, ["status", request_id, "--attempts", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["request"]["status"] == "completed"
    assert [a["outcome"] for a in doc["attempts"]] == ["retried", "retried", "completed"]
    admin_env = {"ERRAND_URL": api.base, "ERRAND_ADMIN_KEY": ADMIN_KEY, "COLUMNS": "200"}
    shown = CliRunner().invoke(app, ["status", request_id, "--attempts"], env=admin_env)
    assert shown.exit_code == 0, shown.output
    assert "attempt 1 traceback" in shown.stdout and "Traceback (most recent call last)" in shown.stdout
