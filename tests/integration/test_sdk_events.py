"""The SDK's event stream, deliveries, redelivery, agents and typed cancel, and the CLI commands
over them, against a real `errand serve` process over loopback HTTP; the event stream resumes
with Last-Event-ID after the server is SIGKILLed mid-stream and started again."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from errand.cli import app
from errand.client import AsyncClient, CancelResult, Client, StreamEvent
from errand.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized
from errand.models import Status
from errand.version import __version__
from tests.support.sdk_server import ADMIN_KEY, CLIENT_KEY, ServeProcess, serve_process
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.slow

AGENTS = [
    {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True, "description": "Says it back"},
    {"id": "demo", "handler": "errand.agents.demo:run", "options": {"step_seconds": 0.1}},
    {"id": "slowdemo", "handler": "errand.agents.demo:run", "options": {"step_seconds": 0.8}},
    {"id": "sleepy", "handler": "errand.agents.builtin:sleep"},
]
WORKFLOW = {"task_timeout": 30, "retry": {"max_attempts": 3}}  # a killed attempt is run again
ASYNC = {
    "mode": "auto",
    "threshold_seconds": 30,
    "sync_wait_seconds": 0.5,
    "webhook_allow_hosts": ["127.0.0.1"],
}


class Recording(httpx.HTTPTransport):
    """The real HTTP transport, keeping the headers of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Headers] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers)
        return super().handle_request(request)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_process(
        tmp_path_factory.mktemp("events"), agents=AGENTS, workflow=WORKFLOW, **{"async": ASYNC}
    ) as srv:
        yield srv


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def user() -> str:
    return "u-" + uuid.uuid4().hex[:8]


@pytest.fixture
def client(served: ServeProcess, user: str) -> Iterator[Client]:
    with Client(served.url, client_key=CLIENT_KEY, user_id=user) as c:
        yield c


def _gapless(events: list[StreamEvent]) -> None:
    assert [e.id for e in events] == list(range(events[0].id, events[0].id + len(events)))


class TestEvents:
    def test_a_request_streams_from_created_to_completed(self, client: Client) -> None:
        rid = client.chat_async("stream me", agent_id="demo").id
        events = list(client.events(rid))
        assert events[0].id == 1 and events[0].type == "created"
        assert events[-1].type == "completed" and events[-1].is_terminal
        assert events[-1].data["result"]["text"].startswith("# Research brief")
        assert "started" in [e.type for e in events] and "progress" in [e.type for e in events]
        _gapless(events)
        later = list(client.events(rid, after=3))
        assert [e.id for e in later] == [e.id for e in events[3:]]

    def test_without_follow_only_what_happened_so_far(self, client: Client) -> None:
        rid = client.chat_async("30", agent_id="sleepy").id
        so_far = list(client.events(rid, follow=False))
        assert so_far and so_far[0].type == "created" and not so_far[-1].is_terminal
        client.cancel(rid)
        ended = list(client.events(rid, follow=False))
        assert ended[-1].type == "cancelled" and len(ended) > len(so_far)

    def test_after_the_end_of_an_ended_request_yields_nothing_at_once(self, client: Client) -> None:
        rid = client.chat_async("short", agent_id="echo").id
        client.wait(rid, timeout=10)
        last = list(client.events(rid))[-1]
        started = time.monotonic()
        assert list(client.events(rid, after=last.id)) == []
        assert list(client.events(rid, after=last.id + 50)) == []  # past the end: resumes at the end
        assert time.monotonic() - started < 2  # no reconnect backoff: the request was checked
        assert list(client.events(rid, after=last.id - 1)) == [last]

    def test_an_unknown_request_is_not_found_at_once(self, client: Client) -> None:
        with pytest.raises(NotFound):
            list(client.events("req_nosuchthing"))

    async def test_the_async_twin_iterates_the_same_stream(self, served: ServeProcess, user: str) -> None:
        async with AsyncClient(served.url, client_key=CLIENT_KEY, user_id=user) as c:
            rid = (await c.chat_async("async stream", agent_id="demo")).id
            events = [e async for e in c.events(rid)]
            assert events[0].type == "created" and events[-1].type == "completed"
            _gapless(events)
            some = [e async for e in c.events(rid, after=len(events) - 2, follow=False)]
            assert [e.id for e in some] == [events[-2].id, events[-1].id]


def test_the_stream_resumes_with_last_event_id_after_the_server_is_killed(tmp_path: Path) -> None:
    """SIGKILL `errand serve` mid-stream and start it again on the same port: the SDK reconnects
    with Last-Event-ID and every event arrives once, in order, up to the end."""
    with serve_process(tmp_path, agents=AGENTS, workflow=WORKFLOW, **{"async": ASYNC}) as srv:
        transport = Recording()
        with Client(srv.url, client_key=CLIENT_KEY, user_id="resumer", transport=transport) as c:
            rid = c.chat_async("survive a crash", agent_id="slowdemo").id
            got: list[StreamEvent] = []
            three = threading.Event()
            failure: list[BaseException] = []

            def consume() -> None:
                try:
                    for event in c.events(rid, reconnects=8):
                        got.append(event)
                        if len(got) == 3:
                            three.set()
                except BaseException as exc:  # reported by the test thread
                    failure.append(exc)
                    three.set()

            reader = threading.Thread(target=consume)
            reader.start()
            assert three.wait(20)
            srv.kill()
            srv.start()
            reader.join(60)
        assert not reader.is_alive() and not failure, failure
    assert got[-1].type == "completed" and got[0].type == "created"
    _gapless(got)
    assert [e.data.get("attempt") for e in got if e.type == "started"] == [1, 2]  # taken over after the kill
    streams = [h for h in transport.sent if h.get("accept") == "text/event-stream"]
    assert streams[0].get("last-event-id") is None
    resumed = [int(h["last-event-id"]) for h in streams[1:]]
    assert resumed and resumed[0] >= 3 and all(r in [e.id for e in got] for r in resumed)


def test_reconnects_are_bounded(tmp_path: Path) -> None:
    with serve_process(tmp_path, agents=AGENTS, workflow=WORKFLOW, **{"async": ASYNC}) as srv:
        with Client(srv.url, client_key=CLIENT_KEY, user_id="bounded") as c:
            rid = c.chat_async("30", agent_id="sleepy").id
            stream = c.events(rid, reconnects=2)
            assert next(stream).type == "created"
            srv.kill()
            with pytest.raises(ServiceUnavailable, match="dropped 3 times in a row"):
                list(stream)


class TestDeliveriesAgentsCancel:
    def test_deliveries_and_redeliver(self, served: ServeProcess, client: Client, hooks: Receiver) -> None:
        rid = client.chat_async("hook me", webhook_url=hooks.url).id
        assert client.wait(rid, timeout=20).is_success
        hooks.wait_for(1)
        first = client.wait(rid).raw["delivery"]
        assert first["mode"] == "webhook"
        with Client(served.url, admin_key=ADMIN_KEY) as admin:
            again = admin.redeliver(rid)
            assert again.state in ("pending", "delivered") and again.webhook_id.startswith("dlv_")
            hits = hooks.wait_for(2)
        assert hits[0].webhook_id != hits[1].webhook_id == again.webhook_id
        found = client.deliveries(rid)
        assert [d.webhook_id for d in found][1] == again.webhook_id
        assert found[0].state == "delivered" and found[0].attempts[0].status_code == 200
        assert found[0].url == hooks.url and found[0].attempts[0].duration_ms is not None
        with pytest.raises(Unauthorized):
            client.redeliver(rid)  # a client key may not

    def test_cancel_answers_a_typed_result(self, client: Client) -> None:
        rid = client.chat_async("30", agent_id="sleepy").id
        cancelled = client.cancel(rid)
        assert isinstance(cancelled, CancelResult)
        assert cancelled.request_id == rid and cancelled.status is Status.CANCELLED
        assert cancelled.cancellation in ("immediate", "cooperative")
        done = client.chat("finished")
        with pytest.raises(Conflict):
            client.cancel(done.id)

    def test_agents(self, client: Client) -> None:
        agents = client.agents()
        assert [a.id for a in agents] == [a["id"] for a in AGENTS]
        echo = agents[0]
        assert echo.default and echo.kind == "handler" and echo.description == "Says it back"
        assert not any(a.default for a in agents[1:])

    async def test_async_twin(self, served: ServeProcess, user: str) -> None:
        async with AsyncClient(served.url, client_key=CLIENT_KEY, user_id=user) as c:
            rid = (await c.chat_async("30", agent_id="sleepy")).id
            cancelled = await c.cancel(rid)
            assert cancelled.status is Status.CANCELLED
            assert (await c.agents())[0].id == "echo"
            assert await c.deliveries(rid) == ()


def _cli(served: ServeProcess, *args: str, user: str | None = None, admin: bool = False) -> Any:
    base = ["--url", served.url, "--admin-key" if admin else "--key", ADMIN_KEY if admin else CLIENT_KEY]
    if user is not None:
        base += ["--user", user]
    return CliRunner().invoke(app, [*args, *base])


class TestCli:
    def test_version(self) -> None:
        result = CliRunner().invoke(app, ["--version"])
        assert result.exit_code == 0 and result.stdout.strip() == f"errand {__version__}"

    def test_events_printed_and_followed(self, served: ServeProcess, client: Client, user: str) -> None:
        rid = client.chat_async("cli events", agent_id="demo").id
        followed = _cli(served, "events", rid, "--follow", "--json", user=user)
        assert followed.exit_code == 0, followed.output
        lines = [json.loads(line) for line in followed.stdout.splitlines()]
        assert lines[0]["event"] == "created" and lines[-1]["event"] == "completed"
        assert [x["id"] for x in lines] == list(range(1, len(lines) + 1))
        human = _cli(served, "events", rid, user=user)
        assert human.exit_code == 0 and "created" in human.stdout and "completed" in human.stdout
        assert "Searching" in human.stdout  # a progress message of the demo
        after = _cli(served, "events", rid, "--after", str(len(lines) - 1), "--json", user=user)
        assert [json.loads(x)["event"] for x in after.stdout.splitlines()] == ["completed"]

    def test_events_without_follow_stop_at_what_happened(
        self, served: ServeProcess, client: Client, user: str
    ) -> None:
        rid = client.chat_async("30", agent_id="sleepy").id
        so_far = _cli(served, "events", rid, "--json", user=user)
        assert so_far.exit_code == 0, so_far.output
        assert json.loads(so_far.stdout.splitlines()[0])["event"] == "created"
        assert "cancelled" not in so_far.stdout
        client.cancel(rid)

    def test_deliveries_redeliver_and_agents(
        self, served: ServeProcess, client: Client, user: str, hooks: Receiver
    ) -> None:
        rid = client.chat_async("cli hook", webhook_url=hooks.url).id
        client.wait(rid, timeout=20)
        hooks.wait_for(1)
        again = _cli(served, "redeliver", rid, "--json", admin=True)
        assert again.exit_code == 0, again.output
        new_id = json.loads(again.stdout)["delivery"]["webhook_id"]
        hooks.wait_for(2)
        refused = CliRunner().invoke(
            app, ["redeliver", rid, "--url", served.url], env={"ERRAND_ADMIN_KEY": ""}
        )
        assert refused.exit_code == 1 and "UNAUTHORIZED" in refused.stderr
        listed = _cli(served, "deliveries", rid, "--json", user=user)
        assert [d["webhook_id"] for d in json.loads(listed.stdout)["deliveries"]][1] == new_id
        table = _cli(served, "deliveries", rid, user=user)
        assert table.exit_code == 0 and new_id in table.stdout and "200" in table.stdout
        agents = _cli(served, "agents", user=user)
        assert agents.exit_code == 0 and "echo (default)" in agents.stdout and "slowdemo" in agents.stdout
        as_json = _cli(served, "agents", "--json", user=user)
        assert json.loads(as_json.stdout)["count"] == len(AGENTS)
        nothing = _cli(served, "deliveries", client.chat("no hook").id, user=user)
        assert nothing.exit_code == 0 and "no webhook deliveries" in nothing.stderr


def test_async_events_resume_too(tmp_path: Path) -> None:
    """The async twin resumes after a kill the same way."""

    async def run(srv: ServeProcess) -> list[StreamEvent]:
        async with AsyncClient(srv.url, client_key=CLIENT_KEY, user_id="aresumer") as c:
            rid = (await c.chat_async("async crash", agent_id="slowdemo")).id
            got: list[StreamEvent] = []
            async for event in c.events(rid, reconnects=8):
                got.append(event)
                if len(got) == 3:
                    await asyncio.to_thread(srv.kill)
                    await asyncio.to_thread(srv.start)
            return got

    with serve_process(tmp_path, agents=AGENTS, workflow=WORKFLOW, **{"async": ASYNC}) as srv:
        got = asyncio.run(run(srv))
    assert got[0].type == "created" and got[-1].type == "completed"
    _gapless(got)
