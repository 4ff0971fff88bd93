"""What a new user hit, over real HTTP: unknown agent and trigger names list the valid ones; the
CLI explains a missing or refused key in its own terms; the SDK and the CLI default to the same
end user (and `--help` says what it is); the CLI's `--limit` is the server's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner, Result

from errand.cli import app
from errand.client import Client
from errand.errors import ResourceNotFound
from errand.models import DEFAULT_USER_ID, LIST_LIMIT_MAX
from tests.support.sdk_server import CLIENT_KEY, LiveServer, running_server

VALID_AGENTS = ["echo", "demo", "sleepy", "fail"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("newuser")) as srv:
        yield srv


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    base = {"ERRAND_CLIENT_KEY": "", "ERRAND_ADMIN_KEY": "", "ERRAND_USER_ID": "", "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env={**base, **(env or {})})


class TestValidNames:
    def test_an_unknown_agent_id_lists_the_agents(self, live: LiveServer) -> None:
        r = httpx.post(
            f"{live.url}/v1/chat",
            json={"message": "hi", "agent_id": "nope"},
            headers={"X-Muxi-Client-Key": CLIENT_KEY},
        )
        assert r.status_code == 404
        error = r.json()["error"]
        assert error["code"] == "RESOURCE_NOT_FOUND"
        assert error["details"] == {"agent_id": "nope", "valid": VALID_AGENTS}
        assert "echo, demo, sleepy, fail" in error["message"]
        with Client(live.url, client_key=CLIENT_KEY) as c, pytest.raises(ResourceNotFound) as info:
            c.chat("hi", agent_id="nope")
        assert info.value.details == {"agent_id": "nope", "valid": VALID_AGENTS}

    def test_an_unknown_agent_page_lists_them_too(self, live: LiveServer) -> None:
        r = httpx.get(f"{live.url}/v1/agents/nope", headers={"X-Muxi-Client-Key": CLIENT_KEY})
        assert r.status_code == 404 and r.json()["error"]["details"]["valid"] == VALID_AGENTS

    def test_an_unknown_trigger_lists_the_triggers(self, live: LiveServer) -> None:
        r = httpx.post(
            f"{live.url}/v1/triggers/nope", json={"data": {}}, headers={"X-Muxi-Client-Key": CLIENT_KEY}
        )
        assert r.status_code == 404
        assert r.json()["error"]["details"] == {"trigger": "nope", "valid": ["echo-issue"]}
        assert "the triggers are: echo-issue" in r.json()["error"]["message"]


class TestKeys:
    def test_no_key_names_the_variable_and_the_option(self, live: LiveServer) -> None:
        result = _cli("requests", "--url", live.url)
        assert result.exit_code == 1
        stderr = result.stderr
        assert "ERRAND_CLIENT_KEY" in stderr and "--key" in stderr and "X-Muxi" not in stderr

    def test_a_refused_key_says_so(self, live: LiveServer) -> None:
        result = _cli("requests", "--url", live.url, "--key", "not-the-key-000")
        assert result.exit_code == 1
        assert "refused the key" in result.stderr and "ERRAND_CLIENT_KEY" in result.stderr

    def test_redeliver_without_the_admin_key_names_it(self, live: LiveServer) -> None:
        result = _cli("redeliver", "req_x", "--url", live.url)
        assert result.exit_code == 1 and "ERRAND_ADMIN_KEY" in result.stderr


class TestUserAndLimit:
    def test_the_sdk_and_the_cli_default_to_the_same_user(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        with running_server(tmp_path_factory.mktemp("sameuser")) as srv:
            with Client(srv.url, client_key=CLIENT_KEY) as c:  # no user_id, as in the README
                made = c.chat(f"made by the sdk {uuid.uuid4().hex[:6]}")
            assert made.user_id == DEFAULT_USER_ID
            listed = _cli("requests", "--url", srv.url, "--key", CLIENT_KEY, "--json")
            assert made.id in [r["request_id"] for r in json.loads(listed.stdout)["requests"]]
            other = _cli("requests", "--url", srv.url, "--key", CLIENT_KEY, "--user", "u1", "--json")
            assert made.id not in [r["request_id"] for r in json.loads(other.stdout)["requests"]]

    def test_help_says_what_the_user_id_is(self) -> None:
        text = _cli("requests", "--help").stdout
        assert "X-Muxi-User-Id" in text and f"default {DEFAULT_USER_ID!r}" in " ".join(text.split())

    def test_the_cli_limit_is_the_server_limit(self, live: LiveServer) -> None:
        over = _cli("requests", "--url", live.url, "--key", CLIENT_KEY, "--limit", str(LIST_LIMIT_MAX + 1))
        assert over.exit_code == 2 and str(LIST_LIMIT_MAX) in over.output
        most = _cli("requests", "--url", live.url, "--key", CLIENT_KEY, "--limit", str(LIST_LIMIT_MAX))
        assert most.exit_code == 0, most.output
        r = httpx.get(
            f"{live.url}/v1/requests",
            params={"limit": LIST_LIMIT_MAX + 1},
            headers={"X-Muxi-Client-Key": CLIENT_KEY},
        )
        assert r.status_code == 422 and f"1 to {LIST_LIMIT_MAX}" in r.json()["error"]["message"]
