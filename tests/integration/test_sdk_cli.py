"""The SDK (Client, AsyncClient) and the `errand` CLI against a real server over loopback HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from errand import errors
from errand.agents.base import RunContext
from errand.agents.registry import AgentRegistry
from errand.cli import app
from errand.client import AsyncClient, Client, RequestHandle, RequestStatus
from errand.config import load_config
from errand.models import Progress, Status
from errand.triggers import load_triggers
from tests.support.sdk_server import (
    ADMIN_KEY,
    CLIENT_KEY,
    FORMATION,
    OTHER_KEY,
    LiveServer,
    running_server,
    write_formation,
)

REPO = Path(__file__).resolve().parents[2]
ERRAND = Path(sys.executable).with_name("errand")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("sdk")) as srv:
        yield srv


@pytest.fixture
def user() -> str:
    """A fresh end-user id per test, so request lists never see another test's requests."""
    return "u-" + uuid.uuid4().hex[:8]


@pytest.fixture
def client(live: LiveServer, user: str) -> Iterator[Client]:
    with Client(live.url, client_key=CLIENT_KEY, user_id=user) as c:
        yield c


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- SDK ----------------------------------------------------------------------------------------


class TestSyncClient:
    def test_chat_sync_returns_the_result_text(self, client: Client, user: str) -> None:
        st = client.chat("hello there")
        assert st.status is Status.COMPLETED and st.is_complete and st.is_success
        assert st.result is not None and st.result.text == "hello there" and st.result.agent == "echo"
        assert st.id.startswith("req_") and st.attempts == 1 and st.user_id == user
        assert st.duration_ms is not None and st.completed_at is not None

    def test_sync_chat_outliving_the_sync_wait_returns_a_pending_status(self, client: Client) -> None:
        st = client.chat("1.5", agent_id="sleepy")  # the server waits 0.5 s, then answers 202
        assert not st.is_complete and st.status in (Status.PENDING, Status.PROCESSING)
        assert st.result is None
        done = client.wait(st.id, timeout=20)
        assert done.is_success and done.result is not None and done.result.text == "slept 1.5s"

    def test_chat_async_then_wait_reports_increasing_progress(self, client: Client) -> None:
        handle = client.chat_async("AI trends", agent_id="demo")
        assert isinstance(handle, RequestHandle)
        assert handle.id.startswith("req_") and handle.status in (Status.PENDING, Status.PROCESSING)
        assert handle.poll_url.endswith(handle.id) and handle.delivery == "polling"
        seen: list[Progress] = []
        st = client.wait(handle.id, timeout=30, on_progress=seen.append, poll=0.1)
        assert st.is_success and st.result is not None and "Research brief: AI trends" in st.result.text
        percents = [p.percent for p in seen]
        assert len(percents) >= 3, percents
        assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(percents))
        assert seen[-1] == Progress(100.0, "Done", 6, 6)

    def test_wait_raises_builtin_timeout_error_and_cancel_stops_the_work(self, client: Client) -> None:
        handle = client.chat_async("30", agent_id="sleepy")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.wait(handle.id, timeout=0.6)
        assert 0.6 <= time.monotonic() - started < 5
        answer = client.cancel(handle.id)
        assert answer.request_id == handle.id and answer.status is Status.CANCELLED
        assert answer.cancellation in ("immediate", "cooperative")
        st = client.wait(handle.id, timeout=10)
        assert st.status is Status.CANCELLED and st.is_complete and not st.is_success and st.result is None
        assert client.cancel(handle.id).status is Status.CANCELLED  # cancelling again is the same 200

    def test_cancel_after_completion_is_a_conflict(self, client: Client) -> None:
        st = client.chat("done already")
        with pytest.raises(errors.Conflict) as info:
            client.cancel(st.id)
        assert vars(info.value)["status_code"] == 409 and "completed" in info.value.message

    def test_list_requests_newest_first_with_cursor_and_filter(
        self, client: Client, live: LiveServer
    ) -> None:
        ids = [client.chat(f"item {i}").id for i in range(3)]
        first = client.list_requests(limit=2)
        assert [r.id for r in first] == [ids[2], ids[1]]
        assert first.next_cursor is not None
        rest = client.list_requests(limit=2, cursor=first.next_cursor)
        assert [r.id for r in rest] == [ids[0]] and rest.next_cursor is None
        completed = client.list_requests(status="completed")
        assert sorted(r.id for r in completed) == sorted(ids)
        assert all(r.is_success for r in completed)
        assert len(client.list_requests(status="failed")) == 0
        with Client(live.url, client_key=OTHER_KEY, user_id="someone-else") as stranger:
            assert len(stranger.list_requests()) == 0  # another owner sees nothing

    def test_failed_request_carries_the_error(self, client: Client) -> None:
        st = client.chat("the impossible", agent_id="fail")
        assert st.status is Status.FAILED and st.is_complete and not st.is_success
        assert st.error is not None and "the impossible" in st.error.message and not st.error.retryable

    def test_idempotency_key_returns_the_original_request(self, client: Client) -> None:
        key = "idem-" + uuid.uuid4().hex
        a = client.chat_async("twice", idempotency_key=key)
        b = client.chat_async("twice", idempotency_key=key)
        assert a.id == b.id
        other = client.chat_async("twice", idempotency_key=key + "-2")
        assert other.id != a.id  # a different key is a different request
        with pytest.raises(errors.InvalidRequest):
            client.chat_async("a different body", idempotency_key=key)

    def test_formation_id_routes_under_api_prefix(self, live: LiveServer, user: str) -> None:
        with Client(live.url, client_key=CLIENT_KEY, user_id=user, formation_id=FORMATION) as scoped:
            st = scoped.chat("scoped hello")
            assert st.is_success and scoped.get_request(st.id).id == st.id
        with Client(live.url, client_key=CLIENT_KEY, formation_id="not-this-one") as wrong:
            with pytest.raises(errors.NotFound) as info:
                wrong.chat("hello")
            assert vars(info.value)["status_code"] == 404

    def test_health(self, client: Client) -> None:
        assert client.health()["status"] == "ok"


class TestTypedErrors:
    def test_unknown_id_is_not_found(self, client: Client) -> None:
        with pytest.raises(errors.NotFound) as info:
            client.get_request("req_doesnotexist0000000000")
        assert info.value.code == "REQUEST_NOT_FOUND" and vars(info.value)["status_code"] == 404

    def test_another_users_request_is_not_found(self, client: Client, live: LiveServer) -> None:
        st = client.chat("mine")
        with Client(live.url, client_key=CLIENT_KEY, user_id="intruder") as other:
            with pytest.raises(errors.NotFound):
                other.get_request(st.id)
        with Client(live.url, admin_key=ADMIN_KEY) as admin:
            assert admin.get_request(st.id).is_success  # admin sees everyone's

    def test_bad_key_is_unauthorized(self, live: LiveServer) -> None:
        with Client(live.url, client_key="not-a-real-key") as bad:
            with pytest.raises(errors.Unauthorized) as info:
                bad.chat("hello")
        assert vars(info.value)["status_code"] == 401 and not info.value.transient

    def test_invalid_input_and_unknown_agent(self, client: Client) -> None:
        with pytest.raises(errors.InvalidRequest) as info:
            client.chat("")
        assert vars(info.value)["status_code"] in (400, 422)
        with pytest.raises(errors.ResourceNotFound):
            client.chat("hello", agent_id="no-such-agent")

    def test_unreachable_server_is_service_unavailable(self) -> None:
        with Client(f"http://127.0.0.1:{_closed_port()}", client_key=CLIENT_KEY, timeout=2) as c:
            with pytest.raises(errors.ServiceUnavailable) as info:
                c.health()
        assert info.value.transient and "cannot reach errand" in info.value.message


class TestTriggers:
    def test_fire_trigger_sync_and_async(self, client: Client) -> None:
        data = {"issue": {"title": "Crash on start"}}
        fired = client.fire_trigger("echo-issue", data, use_async=False)
        assert isinstance(fired, RequestStatus) and fired.is_success
        assert fired.result is not None and fired.result.text == "Issue: Crash on start"
        queued = client.fire_trigger("echo-issue", data)  # use_async=True by default
        assert isinstance(queued, RequestHandle)
        assert client.wait(queued.id, timeout=10).is_success
        with pytest.raises(errors.InvalidRequest, match=r"issue\.title"):
            client.fire_trigger("echo-issue", {"issue": {}}, use_async=False)
        with pytest.raises(errors.NotFound):
            client.fire_trigger("no-such-trigger", {})


class TestAsyncClient:
    async def test_the_same_path_awaited(self, live: LiveServer, user: str) -> None:
        async with AsyncClient(live.url, client_key=CLIENT_KEY, user_id=user) as c:
            st = await c.chat("hello async")
            assert st.is_success and st.result is not None and st.result.text == "hello async"
            handle = await c.chat_async("async topic", agent_id="demo")
            seen: list[float] = []

            async def on_progress(p: Progress) -> None:
                assert p.percent is not None
                seen.append(p.percent)

            done = await c.wait(handle.id, timeout=30, on_progress=on_progress, poll=0.1)
            assert done.is_success and done.result is not None and "async topic" in done.result.text
            assert len(seen) >= 3 and seen == sorted(set(seen)) and seen[-1] == 100.0

            slow = await c.chat_async("30", agent_id="sleepy")
            assert (await c.cancel(slow.id)).status is Status.CANCELLED
            assert (await c.get_request(slow.id, wait=5)).status is Status.CANCELLED

            page = await c.list_requests()
            assert {r.id for r in page} == {st.id, handle.id, slow.id}
            assert (await c.health())["status"] == "ok"
            with pytest.raises(errors.NotFound):
                await c.get_request("req_nope")
            with pytest.raises(TimeoutError):
                slow2 = await c.chat_async("30", agent_id="sleepy")
                await c.wait(slow2.id, timeout=0.3)
            await c.cancel(slow2.id)


# -- CLI ----------------------------------------------------------------------------------------


def _cli(live: LiveServer, *args: str, user: str = "cli-user", key: str = CLIENT_KEY) -> Any:
    env = {"ERRAND_URL": live.url, "ERRAND_CLIENT_KEY": key, "ERRAND_USER_ID": user}
    return CliRunner().invoke(app, list(args), env=env)


class TestCliClient:
    def test_chat_json(self, live: LiveServer, user: str) -> None:
        result = _cli(live, "chat", "hi from the cli", "--json", user=user)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["status"] == "completed" and doc["result"]["text"] == "hi from the cli"
        assert doc["user_id"] == user

    def test_chat_plain_prints_only_the_answer(self, live: LiveServer, user: str) -> None:
        result = _cli(live, "chat", "just this", user=user)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "just this"

    def test_chat_async_wait_shows_progress_then_the_result(self, live: LiveServer, user: str) -> None:
        result = _cli(live, "chat", "CLI topic", "--async", "--wait", "--agent", "demo", user=user)
        assert result.exit_code == 0, result.output
        assert "Research brief: CLI topic" in result.stdout
        assert "100%" in result.stderr  # the progress bar's last state

    def test_sync_chat_falls_back_to_waiting(self, live: LiveServer, user: str) -> None:
        result = _cli(live, "chat", "1", "--agent", "sleepy", user=user)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "slept 1s"
        assert "outlived the sync wait" in result.stderr

    def test_async_then_status_wait_requests(self, live: LiveServer, user: str) -> None:
        queued = _cli(live, "chat", "0.3", "--async", "--agent", "sleepy", "--json", user=user)
        assert queued.exit_code == 0, queued.output
        rid = json.loads(queued.stdout)["request_id"]

        waited = _cli(live, "wait", rid, "--json", user=user)
        assert waited.exit_code == 0 and json.loads(waited.stdout)["status"] == "completed"

        status = _cli(live, "status", rid, "--json", user=user)
        doc = json.loads(status.stdout)
        assert doc["request_id"] == rid and doc["result"]["text"] == "slept 0.3s"

        human = _cli(live, "status", rid, user=user)
        assert human.exit_code == 0 and rid in human.stdout and "completed" in human.stdout

        listed = _cli(live, "requests", "--json", user=user)
        assert [r["request_id"] for r in json.loads(listed.stdout)["requests"]] == [rid]
        table = _cli(live, "requests", user=user)
        assert table.exit_code == 0 and rid in table.stdout

    def test_cancel(self, live: LiveServer, user: str) -> None:
        queued = _cli(live, "chat", "30", "--async", "--agent", "sleepy", "--json", user=user)
        rid = json.loads(queued.stdout)["request_id"]
        cancelled = _cli(live, "cancel", rid, user=user)
        assert cancelled.exit_code == 0 and rid in cancelled.stdout and "cancelled" in cancelled.stdout
        as_json = _cli(live, "cancel", rid, "--json", user=user)
        assert json.loads(as_json.stdout)["status"] == "cancelled"
        waited = _cli(live, "wait", rid, user=user)
        assert waited.exit_code == 1  # a cancelled request is not a success

    def test_server_errors_print_code_and_exit_1(self, live: LiveServer, user: str) -> None:
        missing = _cli(live, "status", "req_nothere", user=user)
        assert missing.exit_code == 1 and missing.stderr.startswith("error REQUEST_NOT_FOUND:")
        bad_key = _cli(live, "requests", key="wrong-key-123456", user=user)
        assert bad_key.exit_code == 1 and bad_key.stderr.startswith("error UNAUTHORIZED:")
        done = _cli(live, "chat", "finished", "--json", user=user)
        conflict = _cli(live, "cancel", json.loads(done.stdout)["request_id"], user=user)
        assert conflict.exit_code == 1 and conflict.stderr.startswith("error CONFLICT:")

    def test_failed_request_exits_1_with_its_error(self, live: LiveServer, user: str) -> None:
        result = _cli(live, "chat", "nope", "--agent", "fail", user=user)
        assert result.exit_code == 1 and "cannot do 'nope'" in result.stderr

    def test_trigger(self, live: LiveServer, user: str) -> None:
        data = json.dumps({"issue": {"title": "From the CLI"}})
        result = _cli(live, "trigger", "echo-issue", "--data", data, "--sync", user=user)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "Issue: From the CLI"
        queued = _cli(live, "trigger", "echo-issue", "--data", data, "--async", "--json", user=user)
        assert json.loads(queued.stdout)["status"] in ("pending", "processing", "completed")
        bad = _cli(live, "trigger", "echo-issue", "--data", "{not json", user=user)
        assert bad.exit_code == 2 and "--data" in bad.output


class TestCliServerSide:
    def test_init_writes_a_formation_that_loads(self, tmp_path: Path) -> None:
        target = tmp_path / "my formation"
        result = CliRunner().invoke(app, ["init", str(target)])
        assert result.exit_code == 0, result.output
        cfg = load_config(target / "formation.yaml")
        assert cfg.name == "my-formation"
        assert f"client key: {cfg.keys.client[0]}" in result.stdout
        assert f"admin key:  {cfg.keys.admin[0]}" in result.stdout
        assert cfg.default_agent == "researcher"
        registry = AgentRegistry.from_config(cfg)  # imports my_agent.py from the folder
        assert {"researcher", "my-agent"} <= {agent_id for agent_id, _ in registry.choices()}
        ctx = RunContext(
            request_id="req_t", user_id="0", session_id=None, metadata={}, attempt=1, agent_id="my-agent"
        )
        result = asyncio.run(registry.get("my-agent").run("three small words", ctx))
        assert result.text == "You sent 3 words."
        trigger = load_triggers(target)["github-issue"]
        assert trigger.agent == "researcher" and trigger.use_async is True
        payload = {
            "repository": {"full_name": "o/r"},
            "issue": {"title": "Crash", "body": "b", "user": {"login": "me"}},
        }
        assert "Title: Crash" in trigger.render(payload)
        assert (target / "formation.yaml").stat().st_mode & 0o077 == 0

        again = CliRunner().invoke(app, ["init", str(target)])
        assert again.exit_code == 2 and "--force" in again.stderr
        forced = CliRunner().invoke(app, ["init", str(target), "--force"])
        assert forced.exit_code == 0
        assert load_config(target / "formation.yaml").keys.client != cfg.keys.client

    def test_migrate_applies_then_reports_current(self, tmp_path: Path) -> None:
        path = write_formation(tmp_path)
        first = CliRunner().invoke(app, ["migrate", "--config", str(path)])
        assert first.exit_code == 0, first.output
        assert "0001" in first.stdout
        second = CliRunner().invoke(app, ["migrate", "--config", str(path)])
        assert second.exit_code == 0 and second.stdout == "" and "already current" in second.stderr

    def test_serve_with_a_broken_config_exits_2_naming_the_key(self, tmp_path: Path) -> None:
        path = write_formation(tmp_path, workers={"concurrency": 0})
        env = {**os.environ, "ERRAND_CONFIG": str(path)}
        proc = subprocess.run([str(ERRAND), "serve"], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert "workers.concurrency" in proc.stderr and "Traceback" not in proc.stderr

    @pytest.mark.slow
    def test_worker_process_runs_requests_delivers_webhooks_and_stops_on_sigterm(
        self, tmp_path: Path
    ) -> None:
        hooks = _Receiver()
        async_section = {"mode": "auto", "webhook_allow_hosts": ["127.0.0.1"], "webhook_timeout": 5}
        with hooks, running_server(tmp_path, with_workers=False, **{"async": async_section}) as api:
            proc = subprocess.Popen(
                [str(ERRAND), "worker", "--config", str(api.config_path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},  # the `fail` agent lives in tests/
            )
            try:
                with Client(api.url, client_key=CLIENT_KEY) as c:
                    handle = c.chat_async("from another process", webhook_url=hooks.url)
                    st = c.wait(handle.id, timeout=30)
                assert st.is_success and st.result is not None and st.result.text == "from another process"
                headers, body = hooks.next(timeout=15)
                assert json.loads(body)["request_id"] == handle.id
                assert headers["x-muxi-signature"].startswith("t=")
            finally:
                proc.send_signal(signal.SIGTERM)
                _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert "workers stopped" in stderr


class _Receiver:
    """A webhook receiver on 127.0.0.1:0 that answers 200 and queues what it got."""

    def __init__(self) -> None:
        received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next(self, timeout: float) -> tuple[dict[str, str], bytes]:
        return self.received.get(timeout=timeout)
