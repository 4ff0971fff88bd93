"""A handler whose last report was 90 % finishes at 100 %: in GET, in the list, in the SDK's
progress callback (what the CLI bar shows), in `errand status` and `errand requests`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from errand.cli import app
from errand.client import Client
from errand.models import Progress
from tests.support.sdk_server import CLIENT_KEY, running_server

AGENTS = [
    {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True},
    {"id": "steps", "handler": "tests.support.agents:progress_steps"},  # reports 30, 60, 90 %
]


def test_a_completed_request_reads_100_percent_everywhere(tmp_path: Path) -> None:
    with running_server(tmp_path, agents=AGENTS) as srv, Client(srv.url, client_key=CLIENT_KEY) as c:
        rid = c.chat_async("go", agent_id="steps").id
        seen: list[Progress] = []
        st = c.wait(rid, timeout=20, on_progress=seen.append)
        assert st.is_success and st.progress is not None
        assert (st.progress.percent, st.progress.step, st.progress.total_steps) == (100.0, 3, 3)
        assert seen[-1].percent == 100.0  # the CLI's bar is fed these
        (listed,) = [r for r in c.list_requests() if r.id == rid]
        assert listed.progress is not None and listed.progress.percent == 100.0
        events = list(c.events(rid))
        assert [e.data["percent"] for e in events if e.type == "progress"] == [30, 60, 90]  # as reported
        assert events[-1].data["progress"]["percent"] == 100.0

        args = ["--url", srv.url, "--key", CLIENT_KEY]
        status = CliRunner().invoke(app, ["status", rid, *args])
        assert status.exit_code == 0 and "100% · step 3/3" in status.stdout
        table = CliRunner().invoke(app, ["requests", *args])
        row = next(line for line in table.stdout.splitlines() if rid in line)
        assert "100%" in row
