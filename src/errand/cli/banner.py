"""What `errand serve` prints before it serves: the formation, its agents and keys (masked).

Apart from cli/output.py because it reads the server's Config: output.py is imported by the
client commands, which a client-only install runs without the server packages.
"""

from __future__ import annotations

from rich.markup import escape

from errand.api.protocol_routes import a2a_off_reason
from errand.cli.output import DEMO_KEYS, err, mask_key, mask_url
from errand.config import Config
from errand.version import __version__

__all__ = ["banner", "default_agent_line"]


def banner(cfg: Config, *, host: str, port: int, workers: bool) -> None:
    """What `errand serve` is about to run, without revealing real keys."""
    agents = (
        ", ".join(f"{a.id}{' (default)' if a.id == cfg.default_agent else ''}" for a in cfg.agents)
        or "[yellow]none configured[/]"
    )
    keys = [f"client: {mask_key(k)}" for k in cfg.keys.client]
    keys += [f"admin: {mask_key(k)}" for k in cfg.keys.admin]
    err.print(f"[bold]errand {__version__}[/] · formation [bold cyan]{escape(cfg.name)}[/]")
    err.print(f"  API      http://{host}:{port}   workers: {'on' if workers else 'off'}")
    err.print(f"  console  {f'http://{host}:{port}/ui' if cfg.ui.enabled else 'off (ui.enabled: false)'}")
    off = a2a_off_reason(cfg)
    err.print(f"  a2a      {f'http://{host}:{port}/a2a' if off is None else escape(f'off ({off})')}")
    err.print(f"  storage  {escape(mask_url(cfg.storage_url))}")
    err.print(f"  agents   {agents}")
    err.print(f"  default  {escape(default_agent_line(cfg))}")
    for agent_id in cfg.disabled_agents:
        err.print(f"  [dim]{escape(agent_id)} is off: none of its enabled_if_env variables is set[/]")
    err.print(f"  keys     {escape(' · '.join(keys))}")
    if any(k in DEMO_KEYS for k in (*cfg.keys.client, *cfg.keys.admin)):
        err.print("  [yellow]demo keys are in use: for local trials only[/]")


def default_agent_line(cfg: Config) -> str:
    """What answers requests that name no agent: a model (which, where) or a Python handler."""
    agent = cfg.agent(None)
    if agent is None:
        return "none"
    if agent.model is not None:
        where = mask_url(agent.model.base_url) if agent.model.base_url else "the OpenAI API"
        kind = f"LLM agent, model {agent.model.name} at {where}"
    else:
        kind = f"handler {agent.handler}"
    routed = " (an LLM router picks among the agents first)" if cfg.router is not None else ""
    return f"{agent.id}: {kind}{routed}"
