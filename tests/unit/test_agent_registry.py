"""The agent registry (handlers from the formation folder, defaults, errors) and built-in agents."""

from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from errand.agents import builtin, demo
from errand.agents.base import Cancelled, RunContext
from errand.agents.registry import AgentRegistry, HandlerAgent
from errand.config import Config, build_config
from errand.errors import ConfigError, ResourceNotFound
from errand.models import Progress, Result

HANDLERS = """
import threading

async def shout(message, ctx):
    return {"text": message.upper(), "options": ctx.metadata["agent_options"]}

def where(message, ctx):
    ctx.progress(percent=10, message="in a thread")
    return threading.current_thread().name

NOT_CALLABLE = 42
"""


@pytest.fixture
def formation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A formation folder holding a uniquely named handler module; sys.path is restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = f"formation_agents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(HANDLERS)
    return tmp_path, module


def _config(agents: list[dict[str, Any]], base_dir: Path | str = ".") -> Config:
    return build_config(
        {"keys": {"client": ["client-key-123"]}, "agents": agents}, env={}, base_dir=str(base_dir)
    )


def _ctx(
    agent_id: str = "a", **metadata: Any
) -> tuple[RunContext, list[tuple[str, dict[str, Any], Progress | None]]]:
    seen: list[tuple[str, dict[str, Any], Progress | None]] = []
    ctx = RunContext(
        request_id="req_1",
        user_id="u1",
        session_id=None,
        metadata=dict(metadata),
        attempt=1,
        agent_id=agent_id,
        sink=lambda t, d, p: seen.append((t, d, p)),
    )
    return ctx, seen


def _answer(message: str, ctx: RunContext) -> str:
    return message


async def test_handlers_are_imported_from_the_formation_folder(formation: tuple[Path, str]) -> None:
    folder, module = formation
    config = _config(
        [
            {
                "id": "shout",
                "handler": f"{module}:shout",
                "options": {"tone": "loud"},
                "description": "Shouts",
            },
            {"id": "where", "handler": f"{module}:where"},
        ],
        folder,
    )
    registry = AgentRegistry.from_config(config)
    assert registry.choices() == [("shout", "Shouts"), ("where", "")]

    ctx, _ = _ctx("shout", agent_options={"tone": "from the client"})
    result = await registry.get("shout").run("hi", ctx)
    assert result == Result("HI", "shout", {"options": {"tone": "loud"}})  # formation options win

    ctx, seen = _ctx("where")
    result = await registry.get("where").run("hi", ctx)
    assert result.agent == "where" and result.text != threading.current_thread().name  # ran in a thread
    assert seen == [("progress", Progress(10.0, "in a thread").to_dict(), Progress(10.0, "in a thread"))]


def test_default_agent_is_the_marked_one_else_the_first() -> None:
    echo = {"handler": "errand.agents.builtin:echo"}
    first = AgentRegistry.from_config(_config([{"id": "a", **echo}, {"id": "b", **echo}]))
    assert first.default_id == "a" and first.get(None).id == "a"
    marked = AgentRegistry.from_config(_config([{"id": "a", **echo}, {"id": "b", "default": True, **echo}]))
    assert marked.default_id == "b" and marked.get(None).id == "b"
    assert marked.get("a").id == "a"


def test_unknown_agent_is_resource_not_found() -> None:
    registry = AgentRegistry.from_config(_config([{"id": "a", "handler": "errand.agents.builtin:echo"}]))
    with pytest.raises(ResourceNotFound, match="unknown agent 'zzz'"):
        registry.get("zzz")
    with pytest.raises(ResourceNotFound, match="no agents"):
        AgentRegistry([]).get(None)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("no_such_module_for_errand:run", "cannot import module 'no_such_module_for_errand'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:NOT_CALLABLE", "is not callable"),
    ],
)
def test_broken_handlers_fail_at_start_naming_the_key(
    formation: tuple[Path, str], spec: str, problem: str
) -> None:
    folder, module = formation
    agents = [
        {"id": "ok", "handler": "errand.agents.builtin:echo"},
        {"id": "bad", "handler": spec.format(module=module)},
    ]
    with pytest.raises(ConfigError, match=r"^agents\[1\]\.handler \(agent 'bad'\): ") as info:
        AgentRegistry.from_config(_config(agents, folder))
    assert problem in str(info.value)


def test_a_module_that_raises_on_import_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = f"broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('missing API key')\n")
    with pytest.raises(
        ConfigError, match=r"agents\[0\]\.handler \(agent 'x'\): .*RuntimeError: missing API key"
    ):
        AgentRegistry.from_config(_config([{"id": "x", "handler": f"{module}:run"}], tmp_path))


def test_model_agents_are_built_by_the_llm_module() -> None:
    model = {"name": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-test"}
    registry = AgentRegistry.from_config(_config([{"id": "researcher", "model": model}]))
    agent = registry.get("researcher")
    assert type(agent).__name__ == "LlmAgent" and agent.id == "researcher"


async def test_bad_return_values_are_rejected() -> None:
    agent = HandlerAgent("n", lambda message, ctx: 42)
    with pytest.raises(TypeError, match="expected a str or a dict with 'text'"):
        await agent.run("x", _ctx()[0])


async def test_builtin_echo_and_sleep() -> None:
    ctx, _ = _ctx()
    assert await builtin.echo("same", ctx) == "same"
    assert await builtin.sleep("0.01", ctx) == "slept 0.01s"
    ctx, _ = _ctx(agent_options={"seconds": 0})
    assert await builtin.sleep("not a number", ctx) == "slept 0s"


async def test_demo_reports_every_step_and_mentions_the_question() -> None:
    ctx, seen = _ctx(agent_options={"step_seconds": 0})
    answer = await demo.run("Compare vector databases", ctx)
    assert "Compare vector databases" in answer["text"] and answer["demo"] is True
    steps = [d["message"] for t, d, _ in seen if t == "progress"]
    assert steps == [*demo.STEPS, "Done"]
    assert "".join(d["text"] for t, d, _ in seen if t == "content") == answer["text"]


async def test_demo_stops_at_a_checkpoint_when_cancelled() -> None:
    ctx, seen = _ctx(agent_options={"step_seconds": 0})
    ctx.cancel_event.set()
    with pytest.raises(Cancelled):
        await demo.run("anything", ctx)
    assert seen == []


async def test_aclose_closes_every_agent_even_when_one_fails() -> None:
    closed: list[str] = []

    class Closing(HandlerAgent):
        async def aclose(self) -> None:
            closed.append(self.id)
            if self.id == "a":
                raise RuntimeError("already gone")

    registry = AgentRegistry([Closing("a", _answer), HandlerAgent("plain", _answer), Closing("c", _answer)])
    await registry.aclose()
    assert closed == ["a", "c"]
