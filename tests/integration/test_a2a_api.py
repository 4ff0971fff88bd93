"""A2A over loopback HTTP against the in-process server, with the official a2a-sdk client: bad
input and other keys' tasks answer the A2A errors a client maps, failures are tasks that say why,
contexts are sessions, and `a2a.enabled: false` serves nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from a2a.client import ClientCallContext, ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError

from tests.support.server import CLIENT_KEY, OTHER_KEY, Server


@contextlib.asynccontextmanager
async def a2a(srv: Server, key: str = CLIENT_KEY, *, streaming: bool = False) -> AsyncIterator[Client]:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        factory = ClientFactory(ClientConfig(streaming=streaming, httpx_client=http))
        yield await factory.create_from_url(srv.base)
    finally:
        await http.aclose()


def send(text: str, *, agent: str | None = None, context_id: str = "", **config: Any) -> SendMessageRequest:
    message = Message(message_id="m1", role=Role.ROLE_USER, parts=[Part(text=text)], context_id=context_id)
    if agent is not None:
        message.metadata.update({"agent_id": agent})
    return SendMessageRequest(message=message, configuration=SendMessageConfiguration(**config))


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def one(client: Client, request: SendMessageRequest) -> Any:
    [answer] = [e async for e in client.send_message(request)]
    return answer.task


def test_a_failed_task_is_failed_with_the_reason(server: Server) -> None:
    async def flow() -> None:
        async with a2a(server) as client:
            task = await one(client, send("boom", agent="fail"))
            assert task.status.state == TaskState.TASK_STATE_FAILED
            assert "cannot do 'boom'" in task.status.message.parts[0].text

    run(flow())


def test_turns_of_one_context_share_its_session(server: Server) -> None:
    async def flow() -> None:
        async with a2a(server) as client:
            first = await one(client, send("one"))
            second = await one(client, send("two", context_id=first.context_id))
            assert second.context_id == first.context_id and second.id != first.id
            for task in (first, second):
                doc = server.client().get(f"/v1/requests/{task.id}").json()
                assert doc["session_id"] == first.context_id

    run(flow())


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (send("   "), InvalidParamsError),  # no text
        (send("hi", agent="nobody"), TaskNotFoundError),  # unknown agent: errand's not-found
        (
            send("hi", task_push_notification_config=TaskPushNotificationConfig(url="http://10.0.0.1/x")),
            InvalidParamsError,
        ),
    ],
    ids=["blank", "unknown-agent", "private-webhook"],
)
def test_bad_sends_are_a2a_errors(
    server: Server, request_: SendMessageRequest, error: type[Exception]
) -> None:
    async def flow() -> None:
        async with a2a(server) as client:
            with pytest.raises(error) as raised:
                await one(client, request_)
            assert "internal" not in str(raised.value).lower()

    run(flow())


def test_another_keys_task_is_not_found(server: Server) -> None:
    async def flow() -> None:
        async with a2a(server) as mine, a2a(server, OTHER_KEY) as theirs:
            task = await one(mine, send("secret"))
            with pytest.raises(TaskNotFoundError):
                await theirs.get_task(GetTaskRequest(id=task.id))
            with pytest.raises(TaskNotFoundError):
                await theirs.get_task(GetTaskRequest(id="no such task"))

    run(flow())


def test_a_bad_resume_position_is_invalid_params(server: Server) -> None:
    async def flow() -> None:
        async with a2a(server) as plain, a2a(server, streaming=True) as streaming:
            task = await one(plain, send("hi"))
            bad = ClientCallContext(service_parameters={"Last-Event-ID": "soon"})
            with pytest.raises(InvalidParamsError):
                async for _ in streaming.subscribe(SubscribeToTaskRequest(id=task.id), context=bad):
                    pass

    run(flow())


def test_resubscribing_to_an_ended_task_replays_from_the_position(server: Server) -> None:
    async def flow() -> None:
        async with a2a(server) as plain, a2a(server, streaming=True) as streaming:
            task = await one(plain, send("hi"))
            everything = ClientCallContext(service_parameters={"Last-Event-ID": "0"})
            resubscribe = SubscribeToTaskRequest(id=task.id)
            events = [e async for e in streaming.subscribe(resubscribe, context=everything)]
            assert events[0].task.status.state == TaskState.TASK_STATE_COMPLETED
            kinds = [e.status_update.metadata["errand_event"] for e in events if e.HasField("status_update")]
            assert (kinds[0], kinds[1], kinds[-1]) == ("created", "started", "completed")
            now = [e async for e in streaming.subscribe(SubscribeToTaskRequest(id=task.id))]
            assert len(now) == 1 and now[0].HasField("task")  # no position: the task, nothing to replay

    run(flow())


def test_oversized_body_is_413_and_no_key_is_401(server: Server) -> None:
    c = httpx.Client(base_url=server.base, timeout=10)
    big = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"pad": "x" * 300_000}}
    r = c.post("/a2a", json=big, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    r = c.post(
        "/a2a",
        json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"},
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 401
    c.close()


def test_disabled_serves_no_a2a(make_server: Callable[..., Server]) -> None:
    srv = make_server(a2a={"enabled": False})
    c = srv.client()
    assert c.get("/.well-known/agent-card.json").status_code == 404
    assert c.post("/a2a", json={}).status_code == 404
