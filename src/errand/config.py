"""formation.yaml -> a frozen Config. The only module that reads os.environ.

`${VAR}` and `${VAR:-default}` are interpolated in every string value. Unknown keys and bad
values are rejected with a ConfigError naming the dotted key (e.g. `workers.concurrency`).
Components get their own slice of the Config by constructor; nothing reads globals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from errand.async_config import AsyncConfig as AsyncConfig
from errand.durations import Duration, parse_duration
from errand.errors import ConfigError
from errand.limits_config import LimitsConfig
from errand.logs import LogSettings
from errand.observability_config import MetricsConfig, TracingConfig
from errand.schedules_config import SchedulesConfig
from errand.server_config import ServerConfig
from errand.ui_config import UiConfig
from errand.workflow_config import RetryPolicy as RetryPolicy
from errand.workflow_config import WorkersConfig as WorkersConfig
from errand.workflow_config import WorkflowConfig as WorkflowConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Keys(_Section):
    client: list[str] = Field(default_factory=list)
    """Client keys (`X-Muxi-Client-Key` or `Authorization: Bearer`), at least 8 characters. A request
    belongs to the key that made it and its user id: rotating a key hides the old key's requests from the
    new one (admins still see them)."""
    admin: list[str] = Field(default_factory=list)
    """Admin keys (`X-Muxi-Admin-Key`): every request of every user, the webhook secret, redeliveries,
    schedules."""
    viewer: list[str] = Field(default_factory=list)
    """Read-only keys (the console's viewers): they read everything an admin key reads (but the
    webhook secret), and every change they ask is refused with 403 FORBIDDEN."""
    metrics: list[str] = Field(default_factory=list)
    """Keys that may read /metrics and nothing else (for a Prometheus scraper), when
    metrics.require_key asks for a key; an admin key works there too."""


class StorageConfig(_Section):
    url: str = "sqlite:///errand.db"
    """`sqlite:///PATH` (relative to the formation's folder; `sqlite:////abs/path` for absolute) or
    `postgresql://user:pass@host:5432/db`."""
    sqlite_synchronous: Literal["full", "normal"] = "full"
    """full: every commit is fsynced before the 202 (survives power loss); normal: survives a
    process crash, the last commits may be lost on power loss."""
    pool_size: int = Field(default=10, ge=1, le=200)
    """PostgreSQL connections per process in the pool. Each process also keeps one LISTEN
    connection, and each process running workers one more that holds their session locks
    (how other workers see at once that it died): pool_size + 2 in all."""
    sqlite_busy_timeout_seconds: float = Field(default=5.0, ge=0, le=600)
    """How long a SQLite write waits for a lock another process holds (e.g. a `sqlite3` shell in
    BEGIN EXCLUSIVE) before it answers 503 SERVICE_UNAVAILABLE; counted from the request."""


class ModelConfig(_Section):
    provider: Literal["openai"] = "openai"
    """The API the model speaks: OpenAI-compatible chat completions."""
    name: str
    """The model name sent to the endpoint (e.g. `gpt-4o-mini`)."""
    base_url: str | None = None
    """An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LiteLLM ...); unset: OpenAI's."""
    api_key: str | None = None
    """The endpoint's API key (`${OPENAI_API_KEY}`); unset for servers that need none."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds per model call (task_timeout still bounds the attempt)."""


class AgentConfig(_Section):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """The agent's id (`agent_id` in a request)."""
    description: str = ""
    """What the agent does: shown by GET /v1/agents, read by the router."""
    handler: str | None = None
    """`module:function` of a Python handler agent, called as fn(message, ctx) (docs/agents.md); exactly
    one of handler and model."""
    model: ModelConfig | None = None
    """An LLM agent's OpenAI-compatible chat model; exactly one of handler and model."""
    system_prompt: str | None = None
    """An LLM agent's system message."""
    temperature: float | None = None
    """Sent to the model when set."""
    max_tokens: int | None = None
    """Sent to the model when set."""
    tools: list[str] = Field(default_factory=list)
    """An LLM agent's tools, each `module:function` (signature and docstring become the schema)."""
    max_steps: int = Field(default=8, ge=1, le=100)
    """Model calls per request for an LLM agent, tool rounds included."""
    ask_user: bool = False
    """LLM agents: offer the model the built-in `ask_user` tool (the request then waits in
    input_required for a person's answer, which the model gets as the tool's result)."""
    ask_user_timeout: Duration | None = None
    """LLM agents: an ask_user question unanswered this long fails the request (input_timeout)."""
    default: bool = False
    """Answers requests that name no agent (else the first agent)."""
    isolation: Literal["inline", "process"] = "inline"
    """inline: the handler runs in the worker's event loop (or a thread, if sync). process: each
    attempt runs in its own child process, which cancel and task_timeout kill and whose crash
    fails or retries only that request (handler agents only)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Free-form settings handed to a Python handler agent as ctx.metadata['agent_options']."""
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Requests of this agent running at once, across all processes (unset: no cap).",
    )
    task_timeout: Duration | None = Field(
        default=None, description="Seconds per attempt for this agent (unset: workflow.task_timeout)."
    )
    retry: RetryPolicy | None = Field(
        default=None, description="This agent's retry policy (unset: workflow.retry)."
    )
    expected_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Auto mode's duration estimate while the agent has no history (3 completed requests).",
    )
    enabled_if_env: list[str] = Field(default_factory=list)
    """Environment variables of which at least one must be set (non-empty) for this agent to
    exist; empty: always enabled. Evaluated by build_config before interpolation, so a disabled
    agent's `${VAR}` references need not resolve (e.g. a model agent without an API key)."""

    @property
    def is_llm(self) -> bool:
        return self.model is not None

    @model_validator(mode="after")
    def _one_kind(self) -> AgentConfig:
        if (self.handler is None) == (self.model is None):
            raise ValueError("an agent needs exactly one of `handler` (module:function) or `model`")
        if self.handler is not None and ":" not in self.handler:
            raise ValueError(f"handler must look like module:function, got {self.handler!r}")
        if self.isolation == "process" and self.handler is None:
            raise ValueError("isolation: process is for `handler` agents (a model agent waits on HTTP)")
        return self


class RouterConfig(_Section):
    """Optional LLM router: picks the agent of a request that names none (see agents/router.py)."""

    model: ModelConfig
    system_prompt: str | None = None
    """Replaces the built-in routing instructions (the agent list is still appended)."""


class A2AConfig(_Section):
    """`a2a:` the A2A server (api/a2a_routes.py), served when the `a2a` extra is installed."""

    enabled: bool = True


class Config(_Section):
    name: str = Field(default="errand", pattern=r"^[A-Za-z0-9_.-]+$")
    """The formation id: also the `{formation_id}` of the `/api/{formation_id}/v1/...` paths."""
    keys: Keys = Field(default_factory=Keys)
    """API keys; at least one client or admin key."""
    storage: StorageConfig = Field(default_factory=StorageConfig)
    """Where requests live: SQLite (default) or PostgreSQL."""
    async_: AsyncConfig = Field(default_factory=AsyncConfig, alias="async")
    """Sync vs async, webhooks, result lifetime."""
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)
    """Task timeout and retries."""
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    """The workers each process runs."""
    server: ServerConfig = Field(default_factory=ServerConfig)
    """HTTP limits."""
    logging: LogSettings = Field(default_factory=LogSettings)
    """`logging: {level, format, access_log}` (logs.py); `errand serve|worker` flags override."""
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    """GET /metrics."""
    schedules: SchedulesConfig = Field(default_factory=SchedulesConfig)
    """`schedules: {enabled, tick, max_failures, misfire_grace}` (schedules_config.py)."""
    agents: list[AgentConfig] = Field(default_factory=list)
    """The agents of this formation (handler or model), each with its own id."""
    router: RouterConfig | None = None
    """An LLM that picks the agent of a request that names none; unset: the default agent answers."""
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    """OpenTelemetry traces (`errand[otel]`)."""
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    """Fair claiming, caps and the queue cap, across all processes on the database."""
    ui: UiConfig = Field(default_factory=UiConfig)
    """The web console at /ui."""
    a2a: A2AConfig = Field(default_factory=A2AConfig)
    """`a2a: {enabled}`: /.well-known/agent-card.json and POST /a2a (needs `errand[a2a]`)."""
    overlord: dict[str, Any] = Field(default_factory=dict)
    """Accepted for MUXI compatibility; only overlord.workflow.timeouts.task_timeout is read."""
    base_dir: str = "."
    """The formation's folder (set by load_config): handlers and triggers/ are found there."""
    _disabled: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _check(self) -> Config:
        if not self.keys.client and not self.keys.admin:
            raise ValueError("keys: at least one client or admin key is required")
        for k in (*self.keys.client, *self.keys.admin, *self.keys.viewer, *self.keys.metrics):
            if len(k) < 8:
                raise ValueError("keys: every key must be at least 8 characters long")
        ids = [a.id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError("agents: agent ids must be unique")
        if sum(a.default for a in self.agents) > 1:
            raise ValueError("agents: at most one agent may be `default: true`")
        return self

    @property
    def default_agent(self) -> str | None:
        for a in self.agents:
            if a.default:
                return a.id
        return self.agents[0].id if self.agents else None

    def agent(self, agent_id: str | None) -> AgentConfig | None:
        """The configuration of an agent (None: the default one); None when unknown."""
        key = self.default_agent if agent_id is None else agent_id
        return next((a for a in self.agents if a.id == key), None)

    def retry_for(self, agent_id: str | None) -> RetryPolicy:
        """The retry policy of an agent's requests: its own `retry`, else `workflow.retry`."""
        agent = self.agent(agent_id)
        return agent.retry if agent is not None and agent.retry is not None else self.workflow.retry

    @property
    def disabled_agents(self) -> tuple[str, ...]:
        """Ids of the agents left out because none of their `enabled_if_env` variables is set."""
        return self._disabled

    @property
    def store_options(self) -> dict[str, Any]:
        """open_store's options from the formation, the same for `errand serve`, `errand worker`
        and `errand migrate`. storage.pool_size sizes a PostgreSQL pool only: SQLite's readers
        are a local matter of its own (more would only add file handles)."""
        options: dict[str, Any] = {
            "synchronous": self.storage.sqlite_synchronous,
            "poll_interval": self.workers.poll_interval,
            "busy_timeout": self.storage.sqlite_busy_timeout_seconds,
            "result_ttl": self.async_.result_ttl,
        }
        if self.storage.url.startswith(("postgresql:", "postgres:")):
            options["pool_size"] = self.storage.pool_size
        return options

    @property
    def storage_url(self) -> str:
        """storage.url with a relative SQLite path resolved against the formation folder."""
        url = self.storage.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return "sqlite:///" + str(Path(self.base_dir) / url[len("sqlite:///") :])
        return url


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string; a missing VAR names its key."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set")

    return _ENV.sub(sub, value)


def _drop_unset(value: Any) -> Any:
    """Empty strings left by interpolation mean "not configured" (e.g. an unset optional key)."""
    if isinstance(value, dict):
        return {k: _drop_unset(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_unset(v) for v in value if v != ""]
    return value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("async" if part == "async_" else part)
    return out


def build_config(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, base_dir: str = "."
) -> Config:
    """Validate a formation mapping (already parsed YAML) into a Config."""
    if not isinstance(data, Mapping):
        raise ConfigError("formation: the top level must be a mapping of keys")
    env = os.environ if env is None else env
    data, disabled = _enabled_agents(data, env)
    raw = _drop_unset(interpolate(data, env))
    raw.setdefault("base_dir", base_dir)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_loc(e['loc']) or 'formation'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(problems), details=problems) from None
    timeout = cfg.overlord.get("workflow", {}).get("timeouts", {}).get("task_timeout")
    if timeout is not None and "task_timeout" not in (data.get("workflow") or {}):
        cfg = cfg.model_copy(
            update={"workflow": cfg.workflow.model_copy(update={"task_timeout": parse_duration(timeout)})}
        )
    cfg = cfg.model_copy(update={"tracing": cfg.tracing.resolved(env)})
    cfg._disabled = disabled
    return cfg


def _enabled_agents(
    data: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The formation without the agents whose `enabled_if_env` names no set variable, and their
    ids. Runs before interpolation: a left-out agent may reference variables that are unset.
    A malformed `enabled_if_env` keeps the agent, so validation reports it by its key."""
    out = dict(data)
    agents = out.get("agents")
    if not isinstance(agents, list):
        return out, ()
    kept: list[Any] = []
    disabled: list[str] = []
    for agent in agents:
        names = agent.get("enabled_if_env") if isinstance(agent, Mapping) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            names = []  # absent or malformed: kept (validation names a malformed one)
        if names and not any(env.get(n) for n in names):
            disabled.append(str(agent.get("id")))
        else:
            kept.append(agent)
    out["agents"] = kept
    return out, tuple(disabled)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read formation.yaml (path, else $ERRAND_CONFIG, else ./formation.yaml)."""
    p = Path(path or os.environ.get("ERRAND_CONFIG") or "formation.yaml")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return build_config(data, base_dir=str(p.resolve().parent))
