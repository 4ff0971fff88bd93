"""LLM wiring without a network: router answers, registry resolve/aclose, `enabled_if_env`,
the tool-aware estimate and the `errand serve` banner line."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from errand.agents.base import RunContext
from errand.agents.registry import AgentRegistry, HandlerAgent
from errand.agents.router import LlmRouter, parse_choice
from errand.cli.output import default_agent_line
from errand.config import RouterConfig, build_config, load_config
from errand.errors import ConfigError
from errand.mode import TOOL_ROUND_S, estimate_seconds

REPO = Path(__file__).resolve().parents[2]
KEYS = {"client": ["client-key-aaaaaaaa"]}
LLM_ENV = ["OPENAI_API_KEY", "OPENAI_BASE_URL"]


def _ctx(events: list[tuple[str, dict[str, Any]]]) -> RunContext:
    return RunContext(
        request_id="req_t",
        user_id="0",
        session_id=None,
        metadata={},
        attempt=1,
        agent_id="?",
        sink=lambda t, d, p: events.append((t, d)),
    )


def _answer(message: str, ctx: RunContext) -> str:
    return message


@pytest.mark.parametrize(
    ("answer", "chosen"),
    [
        ("poet", "poet"),
        ("  `Poet`.\n", "poet"),
        ('"math"', "math"),
        ("I would pick poet for this.", "poet"),
        ("poet or math", None),  # two ids: no choice
        ("the bard", None),
        ("", None),
        ("poetry", None),  # a word containing an id is not the id
    ],
)
def test_parse_choice(answer: str, chosen: str | None) -> None:
    assert parse_choice(answer, ["math", "poet"]) == chosen


async def test_resolve_without_a_router_uses_the_named_or_default_agent() -> None:
    agents = [HandlerAgent("a", _answer), HandlerAgent("b", _answer)]
    registry = AgentRegistry(agents, default_id="b")
    events: list[tuple[str, dict[str, Any]]] = []
    ctx = _ctx(events)
    assert (await registry.resolve(None, "x", ctx)).id == "b" and ctx.agent_id == "b"
    assert (await registry.resolve("a", "x", ctx)).id == "a" and ctx.agent_id == "a"
    assert events == []  # nothing was routed, so nothing is reported


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_router_that_cannot_connect_falls_back_and_says_why() -> None:
    unused_port = _closed_port()
    config = RouterConfig.model_validate(
        {"model": {"name": "r", "base_url": f"http://127.0.0.1:{unused_port}/v1", "timeout": 2}}
    )
    router = LlmRouter(config)
    registry = AgentRegistry([HandlerAgent("a", _answer), HandlerAgent("b", _answer)], router=router)
    events: list[tuple[str, dict[str, Any]]] = []
    try:
        agent = await registry.resolve(None, "hello", _ctx(events))
    finally:
        await registry.aclose()
    assert agent.id == "a"
    [(kind, data)] = events
    assert kind == "routed" and data["agent"] == "a" and data["by"] == "default"
    assert "APIConnectionError" in data["reason"]


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


def _demo(env: dict[str, str]) -> Any:
    data: dict[str, Any] = {
        "keys": KEYS,
        "agents": [
            {
                "id": "assistant",
                "enabled_if_env": LLM_ENV,
                "default": True,
                "model": {"name": "m", "api_key": "${OPENAI_API_KEY}"},  # unset: must not be read
            },
            {"id": "offline", "handler": "errand.agents.demo:run"},
        ],
    }
    return build_config(data, env=env)


def test_enabled_if_env_leaves_an_agent_out_until_a_variable_is_set() -> None:
    off = _demo({})
    assert [a.id for a in off.agents] == ["offline"] and off.default_agent == "offline"
    assert off.disabled_agents == ("assistant",)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        _demo({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})  # enabled: now its ${VAR} must resolve
    on = _demo({"OPENAI_API_KEY": "sk-x"})
    assert on.default_agent == "assistant" and on.disabled_agents == ()
    chosen = on.agent(None)
    assert chosen is not None and chosen.model is not None and chosen.model.api_key == "sk-x"
    with pytest.raises(ConfigError, match=r"agents\[0\]\.enabled_if_env"):
        build_config({"keys": KEYS, "agents": [{"id": "x", "handler": "m:f", "enabled_if_env": "A"}]}, env={})


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({}, "researcher: handler errand.agents.demo:run"),
        ({"OPENAI_API_KEY": "sk-x"}, "assistant: LLM agent, model gpt-4o-mini at https://api.openai.com/v1"),
        (
            {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_MODEL": "llama3"},
            "assistant: LLM agent, model llama3 at http://127.0.0.1:11434/v1",
        ),
    ],
)
def test_the_demo_formation_chooses_its_default_agent_by_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    for name in (*LLM_ENV, "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = load_config(REPO / "examples/demo/formation.yaml")
    assert default_agent_line(cfg) == line
    assert {"researcher", "echo"} <= {a.id for a in cfg.agents}


def test_tools_and_max_steps_raise_the_estimate_only_when_they_can_be_used() -> None:
    message = "Research the market and compare prices"
    plain = estimate_seconds(message, [])
    assert estimate_seconds(message, [], tool_count=0, max_steps=8) == plain  # no tools: one call
    assert estimate_seconds(message, [], tool_count=3, max_steps=1) == plain  # no step to use them
    with_tools = estimate_seconds(message, [], tool_count=3, max_steps=8)
    # two heavy stems -> three expected tool rounds, plus the three schemas
    assert with_tools == pytest.approx(plain + 3 * TOOL_ROUND_S + 0.75)
    capped = estimate_seconds(message, [], tool_count=3, max_steps=2)
    assert capped == pytest.approx(plain + TOOL_ROUND_S + 0.75)  # one round left after the answer
    assert estimate_seconds(message, [1.0, 2.0, 3.0], tool_count=9, max_steps=50) == 3.0  # history wins
