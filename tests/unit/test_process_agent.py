"""`isolation: process` pieces with real child processes: the wire, exit mapping, ProcessAgent."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from errand.agents.base import RunContext
from errand.agents.process import ProcessAgent, exit_error
from errand.agents.process_wire import error_message, exception_from
from errand.agents.registry import AgentRegistry
from errand.config import build_config
from errand.engine.retry import error_info, is_transient
from errand.engine.watchdog import LoopWatchdog
from errand.errors import AgentProcessCrashed, AgentProcessKilled, ConfigError, PermanentError
from errand.models import Progress

HANDLERS = """
import asyncio, os, time

async def reports(message, ctx):
    ctx.progress(percent=50, message="half")
    await ctx.checkpoint()
    ctx.emit("a")
    ctx.event("step", {"n": 1})
    return {"text": message.upper(), "options": ctx.metadata["agent_options"], "pid": os.getpid()}

def sync_sleeper(message, ctx):
    with open(message, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(30)

class Needy(Exception):
    def __init__(self, *, code):
        super().__init__(f"code {code}")

async def needy(message, ctx):
    raise Needy(code=3)

async def unstorable(message, ctx):
    return {"text": "x", "bad": {1, 2}}
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"iso_agents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(HANDLERS)
    return tmp_path, name


def _ctx(sink: Any) -> RunContext:
    return RunContext("req_1", "u", None, {"k": "v"}, 1, "iso", sink=sink)


@pytest.mark.parametrize(
    ("code", "kind", "text"),
    [
        (-9, AgentProcessKilled, "agent process killed by SIGKILL"),
        (-15, AgentProcessKilled, "agent process killed by SIGTERM"),
        (-11, AgentProcessCrashed, "agent process killed by SIGSEGV"),
        (-6, AgentProcessCrashed, "agent process killed by SIGABRT"),
        (1, AgentProcessCrashed, "agent process exited with code 1 before returning a result"),
        (0, AgentProcessCrashed, "agent process exited with code 0 before returning a result"),
    ],
)
def test_exit_codes_name_the_signal_and_say_whether_to_retry(code: int, kind: type, text: str) -> None:
    error = exit_error(code)
    assert type(error) is kind and error.message == text
    assert is_transient(error) is (kind is AgentProcessKilled)


def test_an_exception_crosses_with_its_cause_and_classification() -> None:
    try:
        try:
            raise ConnectionError("reset")
        except ConnectionError as inner:
            raise RuntimeError("provider call failed") from inner
    except RuntimeError as exc:
        back = exception_from(error_message(exc))
    assert type(back) is RuntimeError and str(back) == "provider call failed"
    assert type(back.__cause__) is ConnectionError
    assert is_transient(back), "judged by its cause chain, as inline"
    assert error_info(back).type == "RuntimeError"


def test_an_exception_that_does_not_unpickle_becomes_a_named_permanent_error() -> None:
    back = exception_from({"t": "error", "type": "Needy", "message": "code 3", "chain": ["not base64!"]})
    assert isinstance(back, PermanentError) and str(back) == "Needy: code 3"


def test_isolation_is_for_handler_agents() -> None:
    with pytest.raises(ConfigError, match=r"agents\[0\].*isolation: process is for `handler` agents"):
        build_config(
            {
                "keys": {"client": ["k" * 8]},
                "agents": [{"id": "m", "model": {"name": "x"}, "isolation": "process"}],
            }
        )


async def test_reports_and_result_cross_the_boundary(module: tuple[Path, str]) -> None:
    folder, name = module
    cfg = build_config(
        {
            "keys": {"client": ["k" * 8]},
            "agents": [
                {"id": "iso", "handler": f"{name}:reports", "isolation": "process", "options": {"o": 1}}
            ],
        },
        base_dir=str(folder),
    )
    agent = AgentRegistry.from_config(cfg).get("iso")
    assert isinstance(agent, ProcessAgent)
    seen: list[tuple[str, dict[str, Any], Progress | None]] = []
    result = await agent.run("hi", _ctx(lambda t, d, p: seen.append((t, d, p))))
    assert result.text == "HI" and result.agent == "iso" and result.extra["options"] == {"o": 1}
    assert result.extra["pid"] != os.getpid()
    assert [t for t, _, _ in seen] == ["progress", "content", "step"]
    assert seen[0][2] == Progress(50.0, "half", None, None)
    assert seen[1][1] == {"text": "a"} and seen[2][1] == {"n": 1}


async def test_agent_errors_and_unstorable_results_fail_the_attempt(module: tuple[Path, str]) -> None:
    folder, name = module
    needy = ProcessAgent("iso", f"{name}:needy", base_dir=str(folder))
    with pytest.raises(PermanentError, match="Needy: code 3"):  # pickles, but will not unpickle
        await needy.run("", _ctx(lambda t, d, p: None))
    unstorable = ProcessAgent("iso", f"{name}:unstorable", base_dir=str(folder))
    with pytest.raises(TypeError, match="result is not JSON-serializable"):
        await unstorable.run("", _ctx(lambda t, d, p: None))


async def test_cancel_kills_a_sync_handler_that_sleeps(module: tuple[Path, str], tmp_path: Path) -> None:
    folder, name = module
    agent = ProcessAgent("iso", f"{name}:sync_sleeper", base_dir=str(folder), kill_grace=5.0)
    marker = tmp_path / "pid"
    task = asyncio.create_task(agent.run(str(marker), _ctx(lambda t, d, p: None)))
    while not marker.exists() or not marker.read_text():  # noqa: ASYNC110 - another process writes it
        await asyncio.sleep(0.02)
    pid = int(marker.read_text())
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 4.0, "SIGTERM must not wait for the sleeping thread"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_watchdog_logs_the_blocking_stack(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="errand.watchdog")
    with LoopWatchdog(0.2, lambda: ["req_blocker"], interval=0.05):
        await asyncio.sleep(0.1)
        time.sleep(0.6)  # the bug the watchdog reports
        await asyncio.sleep(0.3)
    messages = [r.getMessage() for r in caplog.records]
    blocked = [m for m in messages if m.startswith("event loop blocked")]
    assert len(blocked) == 1, messages
    assert "requests running: req_blocker" in blocked[0]
    assert "test_watchdog_logs_the_blocking_stack" in blocked[0] and "time.sleep(0.6)" in blocked[0]
    assert any(m.startswith("event loop ran again after being blocked for") for m in messages)


async def test_watchdog_is_silent_for_a_loop_that_runs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="errand.watchdog")
    with LoopWatchdog(0.2, list, interval=0.05):
        for _ in range(10):
            time.sleep(0.05)  # short stalls, each under the threshold
            await asyncio.sleep(0.03)
    assert [r.getMessage() for r in caplog.records if r.name == "errand.watchdog"] == []
