"""Human input through the SDK (`wait()` returns on input_required, `respond()`, sync and async)
and the CLI (`errand respond ID VALUE`, VALUE parsed as JSON when it parses), against a real
server over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from errand import errors
from errand.cli import app
from errand.client import AsyncClient, Client
from errand.models import Status
from tests.integration.test_input_api import AGENTS
from tests.support.server import CLIENT_KEY, Server


@pytest.fixture
def srv(make_server: Callable[..., Server]) -> Server:
    return make_server(agents=AGENTS)


def test_sync_client_waits_for_the_question_and_responds(srv: Server) -> None:
    with Client(srv.base, client_key=CLIENT_KEY) as c:
        handle = c.chat_async("sdk", agent_id="asker")
        st = c.wait(handle.id, timeout=20)
        assert st.needs_input and not st.is_complete and st.status is Status.INPUT_REQUIRED
        assert st.input_request is not None and st.input_request.prompt == "What is your name?"
        with pytest.raises(errors.InvalidRequest):
            c.respond(handle.id, {"name": 1})
        answered = c.respond(handle.id, {"name": "Ada"})  # input_id: the outstanding one
        assert answered["accepted"] is True and answered["input_id"] == st.input_request.id
        again = c.respond(handle.id, {"name": "Ada"}, input_id=st.input_request.id)
        assert again["accepted"] is False
        with pytest.raises(errors.InputAlreadyAnswered):
            c.respond(handle.id, {"name": "Bob"}, input_id=st.input_request.id)
        done = c.wait(handle.id, timeout=20)
        assert done.is_success and done.result is not None and done.result.text == "hello Ada (sdk)"
        with pytest.raises(errors.InputNotOutstanding):  # nothing outstanding any more
            c.respond(handle.id, "late")


def test_async_client_responds(srv: Server) -> None:
    async def go() -> str:
        async with AsyncClient(srv.base, client_key=CLIENT_KEY) as c:
            handle = await c.chat_async("async sdk", agent_id="asker")
            st = await c.wait(handle.id, timeout=20)
            assert st.needs_input
            await c.respond(handle.id, {"name": "Lin"})
            done = await c.wait(handle.id, timeout=20)
            assert done.result is not None
            return done.result.text

    assert asyncio.run(go()) == "hello Lin (async sdk)"


def test_cli_respond_parses_json_else_takes_the_text(srv: Server) -> None:
    env = {"ERRAND_URL": srv.base, "ERRAND_CLIENT_KEY": CLIENT_KEY}
    runner = CliRunner()
    with Client(srv.base, client_key=CLIENT_KEY) as c:
        rid = c.chat_async("cli", agent_id="asker", metadata={"count": True}).id
        waited = runner.invoke(app, ["wait", rid, "--timeout", "20"], env=env)
        assert waited.exit_code == 2, waited.output  # 2: it waits for input
        assert "What is your name?" in waited.output and f"errand respond {rid}" in waited.output
        bad = runner.invoke(app, ["respond", rid, "Ada"], env=env)  # a string: the schema wants an object
        assert bad.exit_code == 1 and "value" in bad.output
        ok = runner.invoke(app, ["respond", rid, '{"name": "Ada"}', "--json"], env=env)
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.output)["accepted"] is True
        st = c.wait(rid, timeout=20)
        assert st.input_request is not None and st.input_request.prompt == "How many?"
        shown = runner.invoke(app, ["status", rid], env=env)
        assert "input_required" in shown.output and "How many?" in shown.output
        two = runner.invoke(app, ["respond", rid, "2"], env=env)  # JSON: the integer 2
        assert two.exit_code == 0, two.output
        done = c.wait(rid, timeout=20)
        assert done.result is not None and done.result.text == "hello Ada (cli) x2"
