"""What a new user hit, over real HTTP: unknown agent and trigger names list the valid ones; the
CLI explains a missing or refused key in its own terms; the SDK and the CLI default to the same
end user (and `--help` says what it is); the CLI's `--limit` is the server's; a question's schema
is shown where the CLI says to answer it; `errand schedules` names the admin key it needs; and
`errand serve`'s banner says whether A2A is served, else what to install."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from errand.cli import app
from errand.cli.banner import banner
from errand.client import Client
from errand.errors import ResourceNotFound
from errand.models import DEFAULT_USER_ID, LIST_LIMIT_MAX
from tests.support.agents import NAME_SCHEMA
from tests.support.sdk_server import ADMIN_KEY, CLIENT_KEY, REPO, LiveServer, running_server, write_formation

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


ASKERS = [
    {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True},
    {"id": "asker", "handler": "tests.support.agents:asker"},
    {"id": "asks_text", "handler": "tests.support.agents:asks_text"},
]


class TestQuestionShape:
    """`errand wait` said "answer with: errand respond ID VALUE" but not what VALUE must be: the
    first answer a person typed was a 422. The schema (and the expiry) are shown with the prompt."""

    def test_wait_and_status_show_the_schema_to_answer(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        with running_server(tmp_path_factory.mktemp("ask"), agents=ASKERS) as srv:
            with Client(srv.url, client_key=CLIENT_KEY) as c:
                rid = c.chat_async("hi", agent_id="asker", metadata={"ask_timeout": 600}).id
                free = c.chat_async("hi", agent_id="asks_text").id
            env = {"ERRAND_CLIENT_KEY": CLIENT_KEY}
            waited = _cli("wait", rid, "--url", srv.url, "--timeout", "20", env=env)
            assert waited.exit_code == 2, waited.output
            said = " ".join(waited.stderr.split())
            assert json.dumps(NAME_SCHEMA, separators=(",", ":")) in said
            assert "it expires at" in said and f"errand respond {rid} VALUE" in said
            shown = _cli("status", rid, "--url", srv.url, env=env)
            assert '"required":["name"]' in shown.stdout and "expires" in shown.stdout
            text = _cli("wait", free, "--url", srv.url, "--timeout", "20", env=env)
            assert text.exit_code == 2 and "no schema" in text.stderr
            answered = _cli("respond", rid, '{"name": "Ada"}', "--url", srv.url, env=env)
            assert answered.exit_code == 0, answered.output


class TestSchedulesKey:
    """`errand schedules list` with ERRAND_CLIENT_KEY set answered "A valid API key is required:
    send the X-Muxi-Client-Key header", which the user had done: it needs the admin key."""

    def test_schedules_without_the_admin_key_name_it(self, live: LiveServer) -> None:
        result = _cli("schedules", "list", "--url", live.url, env={"ERRAND_CLIENT_KEY": CLIENT_KEY})
        assert result.exit_code == 1
        assert "ERRAND_ADMIN_KEY" in result.stderr and "--admin-key" in result.stderr
        assert "X-Muxi" not in result.stderr
        made = _cli("schedules", "create", "nk", "--every", "30s", "--message", "tick", "--url", live.url)
        assert made.exit_code == 1 and "ERRAND_ADMIN_KEY" in made.stderr
        ok = _cli("schedules", "list", "--url", live.url, env={"ERRAND_ADMIN_KEY": ADMIN_KEY})
        assert ok.exit_code == 0, ok.output

    def test_a_wrong_admin_key_is_the_servers_answer(self, live: LiveServer) -> None:
        result = _cli("schedules", "list", "--url", live.url, env={"ERRAND_ADMIN_KEY": "not-the-admin-key"})
        assert result.exit_code == 1 and "Invalid admin API key" in result.stderr


class TestBannerNamesA2A:
    """`./run` installs errand[server] only: the README's A2A section then met a 404 at
    /.well-known/agent-card.json, and the banner said nothing. It now says what is served."""

    def test_the_banner_names_the_a2a_url_it_serves(
        self, live: LiveServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        host, port = live.url.removeprefix("http://").split(":")
        banner(live.config, host=host, port=int(port), workers=True)
        line = next(x for x in capsys.readouterr().err.splitlines() if x.strip().startswith("a2a"))
        assert line.split() == ["a2a", f"{live.url}/a2a"]

        card = httpx.get(f"{live.url}/.well-known/agent-card.json").json()
        assert card["supportedInterfaces"][0]["url"] == f"{live.url}/a2a"  # what A2A clients call

    def test_the_banner_says_when_a2a_is_off_and_why(self, tmp_path: Path) -> None:
        off = write_formation(tmp_path / "off", a2a={"enabled": False})
        missing = write_formation(tmp_path / "missing")
        script = (
            "import sys\n"
            "if sys.argv[2] == 'missing': sys.modules['a2a'] = None  # as without errand[a2a]\n"
            "from errand.cli.banner import banner\n"
            "from errand.config import load_config\n"
            "banner(load_config(sys.argv[1]), host='127.0.0.1', port=8001, workers=True)\n"
        )
        for path, kind, said in [
            (off, "off", "off (a2a.enabled: false)"),
            (missing, "missing", "pip install 'errand[a2a]'"),
        ]:
            done = subprocess.run(
                [sys.executable, "-c", script, str(path), kind],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
                check=False,
                env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(REPO)},
            )
            assert done.returncode == 0, done.stderr
            line = next(x for x in done.stderr.splitlines() if x.strip().startswith("a2a"))
            assert said in line, line


class TestRequestsTable:
    """At 80 columns a schedule firing's 40-character id squeezed the status to "comple…" and
    the time to "16:23…"; the id, the status and the time now stay whole, the agent gives way."""

    def test_a_long_id_leaves_the_status_and_time_whole(self, live: LiveServer) -> None:
        long_id = "sched-like-" + uuid.uuid4().hex[:29]  # as long as sched:<schedule>:<fire ms>
        with Client(live.url, client_key=CLIENT_KEY) as c:
            c.chat("hi", agent_id="echo", request_id=long_id)
        shown = _cli(
            "requests", "--url", live.url, "--key", CLIENT_KEY, "--limit", "1", env={"COLUMNS": "80"}
        )
        assert shown.exit_code == 0, shown.output
        row = next(line for line in shown.stdout.splitlines() if long_id in line)
        assert max(len(line) for line in shown.stdout.splitlines()) <= 80
        assert row.split()[:2] == [long_id, "completed"]
        assert re.search(r"\b\d\d:\d\d:\d\d\b", row), row
