"""An A2A input-required round trip against a real `errand serve`, with the official a2a-sdk
client, on both backends: a handler asks (`ctx.ask`), the client sees input-required with the
prompt, answers with a message naming the task (`taskId`, `contextId`), and the task completes
with the answer in its artifact; blocking, non-blocking and streamed; a schema, retried
messages, the refused cases; and a subscriber dropped between the result's last chunk and the
`completed` status that resumes with that chunk's `errand_resume`.
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
from a2a.client import ClientCallContext, ClientConfig, ClientFactory
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError, UnsupportedOperationError
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Value

from errand.api.a2a_mapping import RESUME_KEY, SEQ_KEY
from tests.support.procs import serving, write_formation
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.slow

KEY = "a2a-input-key-1"
OTHER = "a2a-input-key-2"
INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED
COMPLETED = TaskState.TASK_STATE_COMPLETED

AGENTS = """\
import asyncio


async def paint(message, ctx):
    colour = await ctx.ask("Which colour?")
    return f"{message}: {colour}"


async def approve(message, ctx):
    schema = {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}
    answer = await ctx.ask("Approve the deploy?", schema=schema)
    return f"approved={answer['approved']}"


async def twice(message, ctx):
    first = await ctx.ask("First?")
    second = await ctx.ask("Second?")
    return f"{first}+{second}"


async def count(message, ctx):
    n = int(await ctx.ask("How many chunks?"))
    for i in range(n):
        ctx.emit(f"c{i} ")
        await asyncio.sleep(0.03)
    return "".join(f"c{i} " for i in range(n))


async def hold(message, ctx):
    await asyncio.sleep(3)
    return "held"
"""


def _formation(tmp: Path, storage_url: str) -> Path:
    return write_formation(
        tmp,
        {
            "name": "a2ainput",
            "keys": {"client": [KEY, OTHER]},
            "storage": {"url": storage_url},
            "async": {"webhook_allow_hosts": ["127.0.0.1"]},
            "workflow": {"task_timeout": 30, "retry": {"max_attempts": 1}},
            "workers": {"concurrency": 4, "lease_seconds": 5, "poll_interval": 0.2},
            "agents": [
                {"id": "paint", "handler": "slow_agents:paint", "default": True},
                {"id": "approve", "handler": "slow_agents:approve"},
                {"id": "twice", "handler": "slow_agents:twice"},
                {"id": "count", "handler": "slow_agents:count"},
                {"id": "hold", "handler": "slow_agents:hold"},
            ],
        },
        AGENTS,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp(f"a2a-input-{request.param}")
    url = (
        f"sqlite:///{tmp / 'a2a.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    )
    with serving(_formation(tmp, url), tmp / "serve.log", env={"PYTHONPATH": str(tmp)}) as (served, _):
        yield served


@contextlib.asynccontextmanager
async def _client(base: str, *, streaming: bool = False, key: str = KEY) -> AsyncIterator[Client]:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield await ClientFactory(ClientConfig(streaming=streaming, httpx_client=http)).create_from_url(base)
    finally:
        await http.aclose()


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def _message(text: str | None = None, *, data: dict[str, Any] | None = None, **ids: str) -> Message:
    message = Message(message_id=f"m-{time.monotonic_ns()}", role=Role.ROLE_USER, **ids)
    if text is not None:
        message.parts.append(Part(text=text))
    if data is not None:
        value = Value()
        value.struct_value.update(data)
        message.parts.append(Part(data=value))
    return message


def _ask(text: str, agent: str, *, immediately: bool = False) -> SendMessageRequest:
    message = _message(text)
    message.metadata.update({"agent_id": agent})
    return SendMessageRequest(
        message=message, configuration=SendMessageConfiguration(return_immediately=immediately)
    )


def _answer(
    task: Task, text: str | None = None, *, immediately: bool = False, **kw: Any
) -> SendMessageRequest:
    message = _message(text, task_id=task.id, context_id=task.context_id, **kw)
    return SendMessageRequest(
        message=message, configuration=SendMessageConfiguration(return_immediately=immediately)
    )


async def _send(client: Client, request: SendMessageRequest) -> Task:
    [answer] = [e async for e in client.send_message(request)]
    return answer.task


def _prompt(task: Task) -> tuple[str, dict[str, Any]]:
    """The status message's text (the prompt) and its data part's `input_request`."""
    parts = task.status.message.parts
    data = next(MessageToDict(p.data) for p in parts if p.HasField("data"))
    return parts[0].text, data["input_request"]


def test_blocking_send_returns_at_input_required_then_the_answer_completes_it(base: str) -> None:
    async def flow() -> None:
        async with _client(base) as client:
            started = time.monotonic()
            asked = await _send(client, _ask("the shed", "paint"))
            assert asked.status.state == INPUT_REQUIRED
            assert time.monotonic() - started < 10  # it returned at the question, not at a timeout
            prompt, question = _prompt(asked)
            assert prompt == "Which colour?" and question["prompt"] == prompt and question["id"]
            request = _answer(asked, "green")
            done = await _send(client, request)
            assert done.status.state == COMPLETED
            assert done.artifacts[0].parts[0].text == "the shed: green"
            again = await _send(client, request)  # the same messageId again: nothing answered twice
            assert (again.id, again.status.state) == (done.id, COMPLETED)
            assert again.artifacts[0].parts[0].text == "the shed: green"

    _run(flow())


def test_non_blocking_answer_returns_the_resumed_task(base: str) -> None:
    async def flow() -> None:
        async with _client(base) as client:
            asked = await _send(client, _ask("the door", "paint"))
            resumed = await _send(client, _answer(asked, "red", immediately=True))
            assert resumed.id == asked.id
            assert resumed.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
            task = resumed
            while task.status.state != COMPLETED:
                await asyncio.sleep(0.05)
                task = await client.get_task(GetTaskRequest(id=asked.id))
            assert task.artifacts[0].parts[0].text == "the door: red"

    _run(flow())


def test_a_schema_takes_a_data_part_and_refuses_what_does_not_fit(base: str) -> None:
    async def flow() -> None:
        async with _client(base) as client:
            asked = await _send(client, _ask("deploy", "approve"))
            _, question = _prompt(asked)
            assert question["schema"]["required"] == ["approved"]
            with pytest.raises(InvalidParamsError, match="schema"):
                await _send(client, _answer(asked, "yes please"))
            with pytest.raises(InvalidParamsError, match="approved"):
                await _send(client, _answer(asked, data={"approved": "yes"}))
            still = await client.get_task(GetTaskRequest(id=asked.id))
            assert still.status.state == INPUT_REQUIRED
            done = await _send(client, _answer(asked, data={"approved": True}))
            assert done.artifacts[0].parts[0].text == "approved=True"

    _run(flow())


def test_a_retried_answer_does_not_answer_the_next_question(base: str) -> None:
    async def flow() -> None:
        async with _client(base) as client:
            asked = await _send(client, _ask("go", "twice"))
            first = _answer(asked, "one")
            second_q = await _send(client, first)
            assert second_q.status.state == INPUT_REQUIRED and _prompt(second_q)[0] == "Second?"
            retried = await _send(client, first)  # same messageId: the task as it is
            assert retried.status.state == INPUT_REQUIRED and _prompt(retried)[0] == "Second?"
            done = await _send(client, _answer(asked, "two"))
            assert done.artifacts[0].parts[0].text == "one+two"

    _run(flow())


def test_streamed_ask_and_streamed_answer(base: str) -> None:
    async def flow() -> None:
        async with _client(base, streaming=True) as client:
            events = [e async for e in client.send_message(_ask("n", "count"))]
            last = events[-1].status_update
            assert last.status.state == INPUT_REQUIRED
            assert last.status.message.parts[0].text == "How many chunks?"
            task = events[0].task
            after = [e async for e in client.send_message(_answer(task, "5"))]
            assert after[0].task.id == task.id and after[0].task.status.state != INPUT_REQUIRED
            chunks = [e.artifact_update for e in after if e.HasField("artifact_update")]
            assert "".join(c.artifact.parts[0].text for c in chunks if c.append) == "c0 c1 c2 c3 c4 "
            assert chunks[-1].last_chunk and chunks[-1].artifact.parts[0].text == "c0 c1 c2 c3 c4 "
            assert after[-1].status_update.status.state == COMPLETED
            seqs = [int(e.status_update.metadata[SEQ_KEY]) for e in after if e.HasField("status_update")]
            assert seqs == sorted(set(seqs))  # in order, none twice

    _run(flow())


def test_resubscribe_while_input_required_and_after_the_last_chunk(base: str) -> None:
    async def flow() -> None:
        async with _client(base, streaming=True) as client:
            events = [e async for e in client.send_message(_ask("n", "count"))]
            task = events[0].task
            waiting = [e async for e in client.subscribe(SubscribeToTaskRequest(id=task.id))]
            assert [e.task.status.state for e in waiting] == [INPUT_REQUIRED]  # the snapshot, then the end
            replay = ClientCallContext(service_parameters={"Last-Event-ID": "1"})
            missed = [e async for e in client.subscribe(SubscribeToTaskRequest(id=task.id), context=replay)]
            assert missed[-1].status_update.status.state == INPUT_REQUIRED
            stream = client.send_message(_answer(task, "4"))
            seen: list[StreamResponse] = []
            async for event in stream:
                seen.append(event)
                if event.HasField("artifact_update") and event.artifact_update.last_chunk:
                    break  # dropped between the result's last chunk and the completed status
            await stream.aclose()  # type: ignore[attr-defined]
            position = seen[-1].artifact_update.metadata[RESUME_KEY]
            assert position.endswith(".1")
            resume = ClientCallContext(service_parameters={"Last-Event-ID": position})
            rest = [e async for e in client.subscribe(SubscribeToTaskRequest(id=task.id), context=resume)]
            assert rest[0].HasField("task")
            assert [e.WhichOneof("payload") for e in rest[1:]] == ["status_update"]
            assert rest[1].status_update.status.state == COMPLETED
            assert rest[1].status_update.metadata[RESUME_KEY] == position.split(".")[0]

    _run(flow())


def test_a_message_for_a_task_that_asks_nothing_is_refused_clearly(base: str) -> None:
    async def flow() -> None:
        async with _client(base) as client:
            asked = await _send(client, _ask("x", "paint"))
            done = await _send(client, _answer(asked, "blue"))
            with pytest.raises(
                UnsupportedOperationError, match="is completed; send a new message with its contextId"
            ):
                await _send(client, _answer(done, "again"))
            running = await _send(client, _ask("x", "hold", immediately=True))
            with pytest.raises(UnsupportedOperationError, match="only an input-required task"):
                await _send(client, _answer(running, "now"))

    _run(flow())


def test_unknown_foreign_and_mismatched_tasks(base: str) -> None:
    async def flow() -> None:
        async with _client(base) as client, _client(base, key=OTHER) as other:
            asked = await _send(client, _ask("y", "paint"))
            with pytest.raises(TaskNotFoundError):
                await _send(other, _answer(asked, "stolen"))
            with pytest.raises(TaskNotFoundError):
                await _send(
                    client, SendMessageRequest(message=_message("z", task_id="req_nope", context_id="c"))
                )
            with pytest.raises(InvalidParamsError, match="contextId"):
                await _send(
                    client, SendMessageRequest(message=_message("z", task_id=asked.id, context_id="ctx_x"))
                )
            with pytest.raises(InvalidParamsError, match="text part or a data part"):
                await _send(client, _answer(asked))
            still = await client.get_task(GetTaskRequest(id=asked.id))
            assert still.status.state == INPUT_REQUIRED
            done = await _send(client, _answer(asked, "mine"))
            assert done.artifacts[0].parts[0].text == "y: mine"

    _run(flow())


def test_an_answer_may_bring_a_push_notification_config(base: str) -> None:
    async def flow(url: str) -> str:
        async with _client(base) as client:
            asked = await _send(client, _ask("the fence", "paint"))
            request = _answer(asked, "white", immediately=True)
            request.configuration.task_push_notification_config.CopyFrom(TaskPushNotificationConfig(url=url))
            resumed = await _send(client, request)
            configs = await client.list_task_push_notification_configs(
                ListTaskPushNotificationConfigsRequest(task_id=resumed.id)
            )
            assert [c.url for c in configs.configs] == [url]
            return str(resumed.id)

    with receiving() as receiver:
        task_id = _run(flow(receiver.url))
        [hit] = receiver.wait_for(1, timeout=20)
    body = json.loads(hit.body)
    assert (body["request_id"], body["status"]) == (task_id, "completed")
    assert body["result"]["text"] == "the fence: white"
