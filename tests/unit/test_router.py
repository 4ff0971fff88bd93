"""errand.agents.router without a network: reading the model's answer, resolving with and without
a router, and the fallback to the default agent when the router cannot be reached."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from errand.agents.base import RunContext
from errand.agents.registry import AgentRegistry, HandlerAgent
from errand.agents.router import LlmRouter, parse_choice
from errand.config import RouterConfig


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
