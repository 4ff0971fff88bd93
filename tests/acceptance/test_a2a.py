"""A2A against a real `errand serve`, spoken by the official `a2a-sdk` client, on both backends.

One server per backend (SQLite file, PostgreSQL database) runs every flow: the agent card,
blocking and non-blocking sends, a streamed send, cancel of a running task, a stream dropped
mid-way and resubscribed with the last `errand_seq` (every missed event once, none twice), and a
push-notification config that becomes errand's signed webhook, verified with `standardwebhooks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from google.protobuf.struct_pb2 import Value
from standardwebhooks import Webhook

from errand.api.a2a_mapping import SEQ_KEY
from tests.support.procs import cli_secret, serving, write_formation
from tests.support.webhook_receiver import Receiver, receiving

pytestmark = pytest.mark.slow

KEY = "a2a-client-key-1"
ADMIN = "a2a-admin-key-1"
CHUNKS = 30

AGENTS = """\
import asyncio


async def chunks(message, ctx):
    for i in range(30):
        ctx.emit(f"c{i} ")
        await asyncio.sleep(0.05)
    return "".join(f"c{i} " for i in range(30))


async def forever(message, ctx):
    ctx.progress(percent=1, message="running")
    while True:
        await asyncio.sleep(0.02)
        await ctx.checkpoint()


async def hold(message, ctx):
    await asyncio.sleep(3)
    return f"held: {message}"


async def pause(message, ctx):
    await asyncio.sleep(0.6)
    return f"paused: {message}"
"""

TRIGGER = """\
---
description: File a bug report
agent: echo
---
Bug: ${{ data.title }}
"""


def _formation(tmp: Path, storage_url: str) -> Path:
    (tmp / "triggers").mkdir(parents=True, exist_ok=True)
    (tmp / "triggers" / "bug.md").write_text(TRIGGER)
    return write_formation(
        tmp,
        {
            "name": "a2aform",
            "keys": {"client": [KEY], "admin": [ADMIN]},
            "storage": {"url": storage_url},
            "async": {"webhook_allow_hosts": ["127.0.0.1"]},
            "workflow": {"task_timeout": 30, "retry": {"max_attempts": 1}},
            "workers": {"concurrency": 4, "lease_seconds": 5, "poll_interval": 0.2},
            "agents": [
                {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True},
                {"id": "chunks", "handler": "slow_agents:chunks", "description": "streams 30 chunks"},
                {"id": "forever", "handler": "slow_agents:forever"},
                {"id": "pause", "handler": "slow_agents:pause"},
                {"id": "hold", "handler": "slow_agents:hold"},
            ],
        },
        AGENTS,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def errand_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp(f"a2a-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'a2a.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    cfg = _formation(tmp, url)
    with serving(cfg, tmp / "serve.log", env={"PYTHONPATH": str(tmp)}) as (base, _):
        yield base, cfg


@contextlib.asynccontextmanager
async def _client(base: str, *, streaming: bool = True) -> AsyncIterator[tuple[Client, httpx.AsyncClient]]:
    """The a2a-sdk client from the served card; `streaming=False` sends message/send."""
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    try:
        factory = ClientFactory(ClientConfig(streaming=streaming, httpx_client=http))
        client = await factory.create_from_url(base)
        yield client, http
    finally:
        await http.aclose()


def _send(
    text: str, agent: str, *, immediately: bool = False, push_url: str | None = None
) -> SendMessageRequest:
    message = Message(message_id=f"m-{time.monotonic_ns()}", role=Role.ROLE_USER, parts=[Part(text=text)])
    message.metadata.update({"agent_id": agent})
    config = SendMessageConfiguration(return_immediately=immediately)
    if push_url is not None:
        config.task_push_notification_config.CopyFrom(TaskPushNotificationConfig(url=push_url))
    return SendMessageRequest(message=message, configuration=config)


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def _seq(event: StreamResponse) -> tuple[int, str]:
    kind = event.WhichOneof("payload")
    body = getattr(event, kind)
    return int(body.metadata[SEQ_KEY]), kind


def test_agent_card_lists_agents_triggers_and_bearer(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server
    r = httpx.get(f"{base}/.well-known/agent-card.json", timeout=5)
    assert r.status_code == 200, r.text
    card = r.json()
    assert {s["id"] for s in card["skills"]} == {"echo", "chunks", "forever", "pause", "hold", "trigger:bug"}
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True}
    assert card["securitySchemes"]["errand_key"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert card["supportedInterfaces"][0]["url"] == f"{base}/a2a"

    async def resolve() -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            got = await A2ACardResolver(http, base).get_agent_card()
            assert got.capabilities.streaming and got.capabilities.push_notifications
            assert got.name == "a2aform"

    _run(resolve())


def test_a_call_without_a_key_is_refused(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server
    r = httpx.post(f"{base}/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"}, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"


def test_blocking_send_returns_the_completed_task(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server

    async def flow() -> None:
        async with _client(base, streaming=False) as (client, _):
            request = _send("hello a2a", "pause")
            [answer] = [e async for e in client.send_message(request)]
            task = answer.task
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
            assert task.artifacts[0].parts[0].text == "paused: hello a2a"
            assert task.context_id

    _run(flow())


def test_non_blocking_send_then_get_until_completed(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server

    async def flow() -> None:
        async with _client(base, streaming=False) as (client, http):
            [answer] = [e async for e in client.send_message(_send("later", "pause", immediately=True))]
            task = answer.task
            assert task.status.state == TaskState.TASK_STATE_SUBMITTED
            states = [task.status.state]
            while task.status.state != TaskState.TASK_STATE_COMPLETED:
                await asyncio.sleep(0.05)
                task = await client.get_task(GetTaskRequest(id=task.id))
                states.append(task.status.state)
            assert task.artifacts[0].parts[0].text == "paused: later"
            assert TaskState.TASK_STATE_WORKING in states
            r = await http.get(f"{base}/v1/requests/{task.id}")  # the same durable request
            assert r.json()["status"] == "completed"

    _run(flow())


def test_streaming_send_delivers_every_chunk_then_completes(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server

    async def flow() -> None:
        async with _client(base) as (client, _):
            events = [e async for e in client.send_message(_send("go", "chunks"))]
            assert events[0].HasField("task")
            chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
            streamed = "".join(c.artifact.parts[0].text for c in chunks if c.append)
            assert streamed == "".join(f"c{i} " for i in range(CHUNKS))
            assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
            assert events[-2].artifact_update.last_chunk

    _run(flow())


def test_cancel_a_running_task(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server

    async def flow() -> None:
        async with _client(base, streaming=False) as (client, _):
            [answer] = [e async for e in client.send_message(_send("spin", "forever", immediately=True))]
            task_id = answer.task.id
            await _until_working(client, task_id)
            cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
            assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
            task = await client.get_task(GetTaskRequest(id=task_id))
            assert task.status.state == TaskState.TASK_STATE_CANCELED

    _run(flow())


async def _until_working(client: Client, task_id: str) -> None:
    for _ in range(200):
        if (await client.get_task(GetTaskRequest(id=task_id))).status.state == TaskState.TASK_STATE_WORKING:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never started")


async def _first_part(
    client: Client, request: SendMessageRequest, chunks: int
) -> tuple[str, list[tuple[int, str]]]:
    """Stream until `chunks` artifact chunks arrived, then drop the connection."""
    task_id, seen = "", []
    stream: AsyncIterator[StreamResponse] = client.send_message(request)
    async for event in stream:
        if event.HasField("task"):
            task_id = event.task.id
            continue
        seen.append(_seq(event))
        if sum(kind == "artifact_update" for _, kind in seen) >= chunks:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return task_id, seen


def test_resubscribe_after_a_dropped_stream_misses_nothing_and_repeats_nothing(
    errand_server: tuple[str, Path],
) -> None:
    base, _ = errand_server

    async def flow() -> None:
        async with _client(base) as (client, _):
            task_id, before = await _first_part(client, _send("go", "chunks"), 3)
            await asyncio.sleep(0.5)  # events go on while nobody listens
            last = before[-1][0]
            resume = ClientCallContext(service_parameters={"Last-Event-ID": str(last)})
            after: list[tuple[int, str]] = []
            text = ""
            async for event in client.subscribe(SubscribeToTaskRequest(id=task_id), context=resume):
                if event.HasField("task"):
                    continue
                after.append(_seq(event))
                if event.HasField("artifact_update") and event.artifact_update.append:
                    text += event.artifact_update.artifact.parts[0].text
            assert after, "nothing was replayed"
            assert after[0][0] == last + 1
            every = before + after
            assert len(every) == len(set(every)), "an event came twice"
            seqs = sorted({s for s, _ in every})
            assert seqs == list(range(seqs[0], seqs[-1] + 1)), "an event was lost"
            final = await client.get_task(GetTaskRequest(id=task_id))
            assert final.status.state == TaskState.TASK_STATE_COMPLETED
            assert seqs == list(range(2, int(final.metadata[SEQ_KEY]) + 1))  # 1 (created): the snapshot
            assert final.artifacts[0].parts[0].text.endswith(text) and text

    _run(flow())


def test_push_notification_is_a_signed_webhook(errand_server: tuple[str, Path]) -> None:
    base, cfg = errand_server
    secret = cli_secret(cfg)
    with receiving() as receiver:
        task_id = _run(_push(base, receiver))
        [hit] = receiver.wait_for(1, timeout=20)
    headers = {k: v for k, v in hit.headers.items() if k.startswith("webhook-")}
    payload = Webhook(secret).verify(hit.body, headers)
    assert payload["request_id"] == task_id
    assert payload["status"] == "completed"
    assert json.loads(hit.body)["result"]["text"] == "pushed"


async def _push(base: str, receiver: Receiver) -> str:
    async with _client(base, streaming=False) as (client, _):
        request = _send("pushed", "echo", push_url=receiver.url)
        [answer] = [e async for e in client.send_message(request)]
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=answer.task.id)
        )
        assert [c.url for c in listed.configs] == [receiver.url]
        return str(answer.task.id)


def test_push_configs_set_get_list_delete_on_a_running_task(errand_server: tuple[str, Path]) -> None:
    base, cfg = errand_server
    secret = cli_secret(cfg)
    with receiving() as receiver:
        kept, dropped = _run(_configs(base, receiver))
        [hit] = receiver.wait_for(1, timeout=20)
        assert receiver.quiet_for(1.0) == [hit]  # the deleted config's task sent nothing
    headers = {k: v for k, v in hit.headers.items() if k.startswith("webhook-")}
    payload = Webhook(secret).verify(hit.body, headers)
    assert (payload["request_id"], payload["status"]) == (kept, "completed")
    assert dropped != kept


async def _configs(base: str, receiver: Receiver) -> tuple[str, str]:
    async with _client(base, streaming=False) as (client, _):
        ids = []
        for text in ("kept", "dropped"):
            [answer] = [e async for e in client.send_message(_send(text, "hold", immediately=True))]
            ids.append(answer.task.id)
        kept, dropped = ids
        for task_id in ids:
            made = await client.create_task_push_notification_config(
                TaskPushNotificationConfig(task_id=task_id, url=receiver.url)
            )
            assert (made.task_id, made.url) == (task_id, receiver.url)
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=kept, id=made.id)
        )
        assert got.url == receiver.url
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=dropped, id=made.id)
        )
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=dropped)
        )
        assert list(listed.configs) == []
        return kept, dropped


def test_a_trigger_skill_renders_its_template_with_the_data_part(errand_server: tuple[str, Path]) -> None:
    base, _ = errand_server

    async def flow() -> None:
        async with _client(base, streaming=False) as (client, _):
            data = Value()
            data.struct_value.update({"title": "Crash"})
            message = Message(message_id="t1", role=Role.ROLE_USER, parts=[Part(data=data)])
            message.metadata.update({"trigger": "trigger:bug"})
            [answer] = [e async for e in client.send_message(SendMessageRequest(message=message))]
            assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
            assert "Bug: Crash" in answer.task.artifacts[0].parts[0].text

    _run(flow())
