"""GET /v1/agents and GET /v1/agents/{agent_id}: the formation's agents, as a client may pick them.

Each agent shows its id, description, whether it is the default, its kind, its tools and its
expected duration: the p90 of its recent completed runs (`store.duration_history`, the same
history the sync/async decision uses), or null while it has too little history. Read from
the configuration, never from a running agent; one history query per agent shown.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.config import AgentConfig
from errand.errors import ResourceNotFound
from errand.mode import expected_from_history
from errand.store.base import Store


async def list_agents(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/agents: every configured agent, in configuration order."""
    default = ctx.config.default_agent
    agents = [await _document(a, a.id == default, ctx.store) for a in ctx.config.agents]
    return json_response({"agents": agents, "count": len(agents)})


async def get_agent(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/agents/{agent_id}: one agent as the list shows it; unknown -> 404."""
    agent_id = request.path_params["agent_id"]
    cfg = next((a for a in ctx.config.agents if a.id == agent_id), None)
    if cfg is None:
        valid = [a.id for a in ctx.config.agents]
        message = f"Agent not found; the agents are: {', '.join(valid) or 'none'}"
        raise ResourceNotFound(message, details={"agent_id": agent_id, "valid": valid})
    return json_response(await _document(cfg, cfg.id == ctx.config.default_agent, ctx.store))


def kind_of(cfg: AgentConfig) -> str:
    if cfg.is_llm:
        return "llm"
    return "process" if cfg.isolation == "process" else "handler"


async def _document(cfg: AgentConfig, default: bool, store: Store) -> dict[str, Any]:
    history = await store.duration_history(cfg.id)
    return {
        "id": cfg.id,
        "description": cfg.description,
        "default": default,
        "kind": kind_of(cfg),
        "tools": list(cfg.tools),
        "expected_seconds": expected_from_history(history),
        "history_samples": len(history),
    }
