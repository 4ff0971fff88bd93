"""The server both HTTP fuzzers attack (test_fuzz_http, test_openapi_schemathesis): one trigger,
short waits and no webhook retries, on SQLite or on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Server, formation

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""The fixture params: every fuzzer runs against both backends."""
AGENTS: list[dict[str, Any]] = formation(Path("."))["agents"]
"""The test server's agents; the fuzzed one adds `asker` (a request that waits on input)."""


def fuzzed_server(
    request: pytest.FixtureRequest, make_server: Callable[..., Server], tmp_path: Path, *, pg_fixture: str
) -> Server:
    """The server of `request.param` ("sqlite" or "postgres"; PostgreSQL's URL from `pg_fixture`)."""
    folder = tmp_path / "formation"
    (folder / "triggers").mkdir(parents=True)
    (folder / "triggers" / "issue.md").write_text("---\nagent: echo\n---\nIssue: ${{ data.title }}\n")
    sections: dict[str, Any] = {
        "base_dir": str(folder),
        "agents": [*AGENTS, {"id": "asker", "handler": "tests.support.agents:asker"}],
        "server": {"max_wait_seconds": 0.2},
        "async": {"sync_wait_seconds": 0.5, "webhook_retries": 0},
    }
    if request.param == "postgres":
        sections["storage"] = {"url": request.getfixturevalue(pg_fixture)}
    return make_server(**sections)
