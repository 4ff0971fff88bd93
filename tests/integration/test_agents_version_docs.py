"""GET /v1/agents, the version (`/health`, `errand --version`, /openapi.json) and the offline /docs
page, over real HTTP (and a real `errand` process for the CLI)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from errand import __version__
from errand.api.schemas import AgentDocument, AgentList, Health
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import Server, wait_for

EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|@import|url\(\s*['"]?https?:""")
"""A reference the browser would fetch from another host (absolute, protocol-relative or CSS)."""


def _agents_server(make_server: Callable[..., Server], fake: FakeOpenAI) -> Server:
    return make_server(
        agents=[
            {"id": "echo", "handler": "tests.support.agents:echo", "default": True, "description": "Echoes"},
            {"id": "iso", "handler": "tests.support.agents:echo", "isolation": "process"},
            {
                "id": "writer",
                "description": "Writes",
                "model": {"provider": "openai", "name": "fake", "base_url": fake.base_url, "api_key": "k"},
                "tools": ["tests.support.agents:add"],
            },
        ]
    )


def test_agents_list_kinds_defaults_tools_and_expected_duration(
    make_server: Callable[..., Server], fake: FakeOpenAI
) -> None:
    srv = _agents_server(make_server, fake)
    c = srv.client()
    first = c.get("/v1/agents")
    assert first.status_code == 200, first.text
    listed = AgentList.model_validate(first.json())
    by_id = {a.id: a for a in listed.agents}
    assert [a.id for a in listed.agents] == ["echo", "iso", "writer"] and listed.count == 3
    assert by_id["echo"].default and not by_id["iso"].default and not by_id["writer"].default
    assert (by_id["echo"].kind, by_id["iso"].kind, by_id["writer"].kind) == ("handler", "process", "llm")
    assert by_id["writer"].tools == ["tests.support.agents:add"] and by_id["echo"].tools == []
    assert by_id["echo"].description == "Echoes"
    assert by_id["echo"].expected_seconds is None and by_id["echo"].history_samples == 0
    for i in range(3):  # enough history for an estimate
        rid = c.post("/v1/chat", json={"message": f"m{i}", "mode": "async"}).json()["request_id"]
        assert wait_for(c, rid)["status"] == "completed"
    echo = AgentDocument.model_validate(c.get("/v1/agents/echo").json())
    assert echo.history_samples == 3
    durations = sorted(srv.run(srv.store.duration_history("echo")))
    assert echo.expected_seconds == pytest.approx(durations[-1], abs=0.001)  # p90 of three: the largest
    assert AgentDocument.model_validate(c.get("/api/testform/v1/agents/iso").json()).kind == "process"


def test_unknown_agent_and_missing_key(server: Server) -> None:
    r = server.client().get("/v1/agents/nobody")
    assert r.status_code == 404 and r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert r.json()["error"]["details"] == {"agent_id": "nobody", "valid": ["echo", "slow", "fail"]}
    r = server.client(None).get("/v1/agents")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_version_is_the_package_metadata_everywhere(server: Server) -> None:
    assert __version__ == metadata.version("errand")
    anon = server.client(None)
    for path in ("/health", "/v1/health", "/api/testform/v1/health"):
        assert Health.model_validate(anon.get(path).json()) == Health(status="ok", version=__version__)
    assert anon.get("/openapi.json").json()["info"]["version"] == __version__
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "errand"), "--version"], capture_output=True, text=True, timeout=30
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == f"errand {__version__}"


def test_docs_page_loads_everything_from_this_server(server: Server) -> None:
    anon = server.client(None)
    page = anon.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert EXTERNAL.search(page.text) is None, EXTERNAL.search(page.text)
    assert "validatorUrl: null" in page.text  # no badge fetched from the online validator
    local = re.findall(r"""(?:src|href|url)[=:]\s*["']([^"']+)["']""", page.text)
    assert {"/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/openapi.json"} <= set(local)
    for path in local:
        r = anon.get(path)
        assert r.status_code == 200 and len(r.content) > 1000, path
    css = anon.get("/docs/swagger-ui.css").text
    fetched = re.findall(r"""url\(\s*['"]?([^'")]+)""", css)
    assert fetched and all(u.startswith("data:") for u in fetched), fetched  # inline images only
    assert "@import" not in css
    assert anon.get("/docs/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    missing = anon.get("/docs/../pyproject.toml")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert anon.get("/docs/index.html").status_code == 404  # only the listed assets are served
