"""Agent registry: turns the formation's `agents:` list into runnable Agents, looked up by id.

A `handler: module:function` agent is a plain or `async` function called as `fn(message, ctx)`;
agents/loading.py imports it from the formation's folder (put first on sys.path) or PYTHONPATH,
once, at start, so a typo fails the start with a message naming `agents[i].handler` rather than
every request, and runs a sync function in a thread so it never blocks the event loop.
`isolation: process` runs a handler in a child process per attempt (agents/process.py).
`model:` agents are built by `errand.agents.llm.LlmAgent`, imported only when one is configured.

`resolve()` is the worker's lookup: an explicit agent id, else the optional LLM router's
choice (agents/router.py), else the default agent. `aclose()` releases what agents hold
(HTTP connection pools) at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from errand.agents.base import Agent, RunContext, coerce_result
from errand.agents.loading import call, is_async, load_function
from errand.config import AgentConfig, Config
from errand.errors import ConfigError, ResourceNotFound
from errand.models import Result

if TYPE_CHECKING:
    from errand.agents.router import LlmRouter

__all__ = ["AgentRegistry", "HandlerAgent"]

log = logging.getLogger("errand.agents")

Handler = Callable[[str, RunContext], Any]
"""fn(message, ctx) -> str | dict with `text` | Result, or an awaitable of one."""


class HandlerAgent:
    """A Python function as an Agent. `options` reach it as ctx.metadata['agent_options']."""

    def __init__(
        self, id: str, fn: Handler, *, description: str = "", options: dict[str, Any] | None = None
    ) -> None:
        self.id = id
        self.description = description
        self.fn = fn
        self.options = dict(options or {})
        self._async = is_async(fn)

    async def run(self, message: str, ctx: RunContext) -> Result:
        # The formation's options win over a client-sent metadata key of the same name.
        ctx.metadata["agent_options"] = dict(self.options)
        return coerce_result(await call(self.fn, self._async, ctx.threads, message, ctx), self.id)

    def __repr__(self) -> str:
        return f"HandlerAgent({self.id!r}, {getattr(self.fn, '__qualname__', self.fn)!r})"


def _build(index: int, cfg: AgentConfig, base_dir: str, kill_grace: float) -> Agent:
    if cfg.handler is not None:
        fn = load_function(
            cfg.handler, where=f"agents[{index}].handler (agent {cfg.id!r})", base_dir=base_dir
        )
        if cfg.isolation == "process":  # imported here too: a typo still fails the start
            from errand.agents.process import ProcessAgent

            return ProcessAgent(
                cfg.id,
                cfg.handler,
                base_dir=base_dir,
                description=cfg.description,
                options=cfg.options,
                kill_grace=kill_grace,
            )
        return HandlerAgent(cfg.id, fn, description=cfg.description, options=cfg.options)
    from errand.agents.llm import LlmAgent  # the OpenAI client is loaded only when needed

    agent: Agent = LlmAgent(cfg, base_dir=base_dir)
    return agent


class AgentRegistry:
    """The configured agents by id, and which one answers requests that name none."""

    def __init__(
        self, agents: Iterable[Agent], *, default_id: str | None = None, router: LlmRouter | None = None
    ) -> None:
        self.router = router
        self._agents: dict[str, Agent] = {}
        for agent in agents:
            if agent.id in self._agents:
                raise ConfigError(f"agents: duplicate agent id {agent.id!r}")
            self._agents[agent.id] = agent
        if default_id is not None and default_id not in self._agents:
            raise ConfigError(f"agents: default agent {default_id!r} is not configured")
        self._default = default_id if default_id is not None else next(iter(self._agents), None)

    @classmethod
    def from_config(cls, config: Config) -> AgentRegistry:
        """Build every agent of the formation; a broken handler fails here, at start."""
        grace = config.workers.kill_grace_seconds
        agents = [_build(i, a, config.base_dir, grace) for i, a in enumerate(config.agents)]
        router = None
        if config.router is not None:
            from errand.agents.router import LlmRouter  # the OpenAI client, only when configured

            router = LlmRouter(config.router)
        return cls(agents, default_id=config.default_agent, router=router)

    @property
    def default_id(self) -> str | None:
        return self._default

    def choices(self) -> list[tuple[str, str]]:
        """(id, description) of every agent, in configuration order: what the router picks among."""
        return [(a.id, a.description) for a in self._agents.values()]

    def get(self, agent_id: str | None) -> Agent:
        """The agent with this id; None -> the default agent. Unknown -> ResourceNotFound."""
        key = self._default if agent_id is None else agent_id
        if key is None:
            raise ResourceNotFound("no agents are configured")
        try:
            return self._agents[key]
        except KeyError:
            valid = list(self._agents)
            raise ResourceNotFound(
                f"unknown agent {key!r}; the agents are: {', '.join(valid)}",
                details={"agent_id": key, "valid": valid},
            ) from None

    async def resolve(self, agent_id: str | None, message: str, ctx: RunContext) -> Agent:
        """The agent to run, also set as ctx.agent_id: the named one; else, with a router and
        a choice to make, the one the router picks (reported as a `routed` event); else the
        default. Unknown id -> ResourceNotFound."""
        if agent_id is not None or self.router is None or len(self._agents) < 2:
            agent = self.get(agent_id)
        else:
            routing = await self.router.choose(message, self.choices(), self.get(None).id)
            ctx.event("routed", routing.to_dict())
            agent = self.get(routing.agent)
        ctx.agent_id = agent.id
        return agent

    async def aclose(self) -> None:
        """Close every agent (and the router) that holds resources; one failing does not
        keep the others open."""
        closers: list[Any] = [*self._agents.values(), self.router]
        for item in closers:
            close = getattr(item, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception:
                log.exception("closing %r failed", item)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents
