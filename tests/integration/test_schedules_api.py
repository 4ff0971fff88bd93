"""/v1/schedules over real HTTP: admin CRUD, run now, errors in the documented shape, and a
trigger's `schedule:` firing by itself as an ordinary request (visible, kind `schedule`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from errand.cli import app
from errand.client import Client
from tests.integration.test_triggers_api import write_triggers
from tests.support.server import ADMIN_KEY, Server

TRIGGERS = {
    "digest": "---\nschedule: {every: 1s, data: {topic: news}}\n---\nDigest of ${{ data.topic }}\n",
    "plain": "Report on ${{ data.topic }}\n",
}


@pytest.fixture
def srv(make_server: Callable[..., Server], tmp_path: Path) -> Server:
    folder = write_triggers(tmp_path / "formation", TRIGGERS)
    return make_server(base_dir=folder, schedules={"tick": 0.1})


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def wait_done(admin: httpx.Client, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        doc: dict[str, Any] = admin.get(f"/v1/requests/{request_id}").json()
        if doc["status"] in ("completed", "failed", "cancelled"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{request_id} did not finish")


def test_crud_and_run_now(srv: Server) -> None:
    admin = srv.client(ADMIN_KEY, admin=True)
    body = {
        "name": "morning",
        "cron": "0 9 * * 1-5",
        "timezone": "Europe/Riga",
        "message": "hi",
        "agent": "echo",
    }
    error_of(srv.client().post("/v1/schedules", json=body), 401, "UNAUTHORIZED")  # a client key
    created = admin.post("/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert created.headers["location"] == f"/v1/schedules/{doc['id']}"
    assert doc["next_fire_at"] > time.time() and doc["next_fire_at_iso"].endswith("+00:00")
    assert (doc["source"], doc["overlap"], doc["catch_up"], doc["enabled"]) == ("api", "skip", "skip", True)
    assert doc["max_failures"] == 5  # schedules.max_failures
    assert admin.get(f"/v1/schedules/{doc['id']}").json() == doc
    assert admin.get("/v1/schedules/morning").json() == doc  # by name too
    names = [s["name"] for s in admin.get("/v1/schedules").json()["schedules"]]
    assert names == ["digest", "morning"]
    error_of(admin.post("/v1/schedules", json=body), 409, "CONFLICT")

    paused = admin.patch(f"/v1/schedules/{doc['id']}", json={"enabled": False}).json()
    assert (paused["enabled"], paused["next_fire_at"]) == (False, None)
    moved = admin.patch(f"/v1/schedules/{doc['id']}", json={"every": "10m", "enabled": True}).json()
    assert (moved["cron"], moved["every"], moved["enabled"]) == (None, 600.0, True)
    assert moved["next_fire_at"] % 600 == 0

    run = admin.post(f"/v1/schedules/{doc['id']}/run")
    assert run.status_code == 202, run.text
    request_id = run.json()["request_id"]
    assert request_id.startswith(f"sched:{doc['id']}:run:")
    done = wait_done(admin, request_id)
    assert (done["status"], done["kind"], done["result"]["text"]) == ("completed", "schedule", "echo: hi")
    assert admin.get(f"/v1/schedules/{doc['id']}").json()["last_request_id"] == request_id

    deleted = admin.delete(f"/v1/schedules/{doc['id']}")
    assert deleted.json() == {"id": doc["id"], "name": "morning", "deleted": True}
    error_of(admin.get(f"/v1/schedules/{doc['id']}"), 404, "RESOURCE_NOT_FOUND")
    error_of(admin.delete(f"/v1/schedules/{doc['id']}"), 404, "RESOURCE_NOT_FOUND")
    error_of(admin.post(f"/v1/schedules/{doc['id']}/run"), 404, "RESOURCE_NOT_FOUND")
    assert admin.get(f"/v1/requests/{request_id}").status_code == 200  # its firing stays


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "cron": "* * * * *", "every": "1m", "message": "m"}, "cron"),
        ({"name": "x", "message": "m"}, "cron"),
        ({"name": "x", "cron": "61 * * * *", "message": "m"}, "cron"),
        ({"name": "x", "cron": "* * * * *", "timezone": "Mars/Olympus", "message": "m"}, "timezone"),
        ({"name": "x", "every": "0.5s", "message": "m"}, "every"),
        ({"name": "x", "every": "soon", "message": "m"}, "every"),
        ({"name": "x", "every": "1m"}, "target"),
        ({"name": "x", "every": "1m", "trigger": "nope"}, "trigger"),
        ({"name": "x", "every": "1m", "trigger": "plain", "data": {}}, "topic"),
        ({"name": "x", "every": "1m", "message": "m", "agent": "nobody"}, "agent"),
        ({"name": "x y", "every": "1m", "message": "m"}, "name"),
        ({"name": "x", "every": "1m", "message": "m", "overlap": "sometimes"}, "overlap"),
        ({"name": "x", "every": "1m", "message": "m", "colour": "red"}, "colour"),
    ],
)
def test_bad_schedules_are_422_naming_what_is_wrong(srv: Server, body: dict[str, Any], field: str) -> None:
    admin = srv.client(ADMIN_KEY, admin=True)
    error = error_of(admin.post("/v1/schedules", json=body), 422, "INVALID_REQUEST")
    assert field in str(error).lower() or field in error["message"]


def test_a_file_schedule_fires_by_itself_and_only_its_enabled_flag_is_editable(srv: Server) -> None:
    admin = srv.client(ADMIN_KEY, admin=True)
    digest = admin.get("/v1/schedules/digest").json()
    assert (digest["source"], digest["trigger"], digest["every"]) == ("file", "digest", 1.0)
    deadline = time.monotonic() + 6
    fired: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not fired:
        listed = admin.get("/v1/requests", params={"limit": 100}).json()
        fired = [r for r in listed["requests"] if r["kind"] == "schedule"]
        time.sleep(0.1)
    assert fired, "the file schedule did not fire"
    done = wait_done(admin, fired[0]["request_id"])
    assert done["result"]["text"] == "echo: Digest of news"
    assert done["trigger"] == "digest"
    error_of(admin.patch("/v1/schedules/digest", json={"every": "5s"}), 409, "CONFLICT")
    error_of(admin.delete("/v1/schedules/digest"), 409, "CONFLICT")
    paused = admin.patch("/v1/schedules/digest", json={"enabled": False})
    assert paused.status_code == 200 and paused.json()["enabled"] is False


def test_the_cli_and_the_sdk_manage_schedules(srv: Server) -> None:
    env = {"ERRAND_URL": srv.base, "ERRAND_ADMIN_KEY": ADMIN_KEY}

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(app, ["schedules", *args, "--json"], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    made = cli("create", "hourly", "--every", "1h", "--message", "status?", "--overlap", "enqueue")
    assert (made["every"], made["overlap"], made["next_fire_at"] % 3600) == (3600.0, "enqueue", 0)
    assert [s["name"] for s in cli("list")] == ["digest", "hourly"]
    assert cli("pause", "hourly")["enabled"] is False
    assert cli("resume", "hourly")["enabled"] is True
    handle = cli("run", "hourly")
    with Client(srv.base, admin_key=ADMIN_KEY) as sdk:
        done = sdk.wait(handle["request_id"], timeout=10)
        assert done.result is not None and done.result.text == "echo: status?"
        assert sdk.get_schedule("hourly")["last_request_id"] == handle["request_id"]
        sdk.update_schedule("hourly", max_failures=0)
    assert cli("show", "hourly")["max_failures"] == 0
    assert cli("delete", "hourly")["deleted"] is True
    missing = CliRunner().invoke(app, ["schedules", "show", "hourly"], env=env)
    assert missing.exit_code == 1 and "RESOURCE_NOT_FOUND" in missing.output
    refused = CliRunner().invoke(app, ["schedules", "list"], env={"ERRAND_URL": srv.base})
    assert refused.exit_code == 1 and "UNAUTHORIZED" in refused.output
