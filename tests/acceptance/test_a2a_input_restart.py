"""An A2A question survives its server: the task asks, `errand serve` is SIGKILLed, a new one
starts on the same database, and the a2a-sdk client's answer (a message naming the task)
resumes it to completion. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest, Task, TaskState

from tests.support.procs import serving, write_formation

pytestmark = pytest.mark.slow

KEY = "a2a-restart-key"
AGENTS = """
async def paint(message, ctx):
    colour = await ctx.ask("Which colour?")
    return f"{message}: {colour}"
"""


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_fresh_url")
        return url
    return f"sqlite:///{tmp_path / 'a2a.db'}"


async def _send(base: str, message: Message) -> Task:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        client = await ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create_from_url(base)
        [answer] = [e async for e in client.send_message(SendMessageRequest(message=message))]
        task = answer.task
        assert task.id == (await client.get_task(GetTaskRequest(id=task.id))).id
        return task


def test_an_a2a_answer_after_a_sigkill_and_restart_completes_the_task(
    tmp_path: Path, storage_url: str
) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "a2arestart",
            "keys": {"client": [KEY]},
            "storage": {"url": storage_url},
            "workers": {"concurrency": 2, "lease_seconds": 5, "poll_interval": 0.2},
            "agents": [{"id": "paint", "handler": "slow_agents:paint", "default": True}],
        },
        AGENTS,
    )
    env = {"PYTHONPATH": str(tmp_path)}
    with serving(cfg, tmp_path / "serve1.log", env=env) as (base, proc):
        first = Message(message_id="m-ask", role=Role.ROLE_USER, parts=[Part(text="the gate")])
        asked = asyncio.run(_send(base, first))
        assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert asked.status.message.parts[0].text == "Which colour?"
        proc.kill()  # SIGKILL: no shutdown code runs

    with serving(cfg, tmp_path / "serve2.log", env=env) as (base, _):
        answer = Message(
            message_id=f"m-{time.monotonic_ns()}",
            role=Role.ROLE_USER,
            parts=[Part(text="yellow")],
            task_id=asked.id,
            context_id=asked.context_id,
        )
        done = asyncio.run(_send(base, answer))
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        assert done.artifacts[0].parts[0].text == "the gate: yellow"
        again = asyncio.run(_send(base, answer))  # retried after the restart: the same task
        assert (again.id, again.status.state) == (done.id, TaskState.TASK_STATE_COMPLETED)
