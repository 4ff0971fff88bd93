"""What every endpoint shares: the ApiContext, the endpoint wrapper, and the submit path.

There is no per-request dependency injection: `create_app` builds one ApiContext, the
lifespan fills in the store, the agents and the triggers, and each endpoint is a plain coroutine
`(request, owner, ctx) -> Response` wrapped once by `endpoint()`, which checks the formation
prefix, authenticates, and turns any exception into the error document.

The submit path is shared by POST /v1/chat and POST /v1/triggers/{name}, so both honour
idempotency keys, webhook URL checks and the sync/async answer in exactly the same way:
`idempotency_key()`, `check_webhook_url()`, `answer()` (and `status_document()`, which is
also what GET /v1/requests/{id} answers).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Authenticator, Owner
from errand.api.bodies import fingerprint
from errand.api.errors import json_response, to_response
from errand.clock import Clock
from errand.config import Config
from errand.delivery.urlguard import check_url_async
from errand.errors import InvalidRequest, ResourceNotFound, ServiceUnavailable
from errand.mode import MIN_HISTORY, estimate_seconds
from errand.models import IdempotencyKey, Mode, to_document
from errand.models import Request as StoredRequest
from errand.store.base import Store
from errand.triggers import Trigger

IDEMPOTENCY_HEADERS = ("x-muxi-idempotency-key", "idempotency-key")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

SUBMITTED = Counter("errand_api_submitted_total", "Requests accepted by the API", ["kind", "mode"])


class NamedAgent(Protocol):
    @property
    def id(self) -> str: ...


class AgentLookup(Protocol):
    """What the API needs of the agent registry (the API never runs agents)."""

    def get(self, agent_id: str | None) -> NamedAgent: ...


class ApiContext:
    """The app's shared parts; `store`, `agents` and `triggers` are set by the lifespan."""

    __slots__ = ("_agents", "_store", "auth", "clock", "config", "feeds", "history", "triggers")

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.auth = Authenticator(config.keys.client, config.keys.admin)
        self._store: Store | None = None
        self._agents: AgentLookup | None = None
        self.history: dict[str, tuple[float, list[float]]] = {}
        """agent id -> (expiry on the loop clock, recent durations): spares a query per submit."""
        self.feeds: dict[str, Any] = {}
        """request id -> the event feed its SSE followers in this process share (api/sse.py)."""
        self.triggers: Mapping[str, Trigger] = {}
        """The formation's triggers/*.md, loaded once at startup (a changed file needs a restart)."""

    @property
    def store(self) -> Store:
        if self._store is None:
            raise ServiceUnavailable("the server is starting or stopping")
        return self._store

    @store.setter
    def store(self, value: Store | None) -> None:
        self._store = value

    @property
    def agents(self) -> AgentLookup:
        if self._agents is None:
            raise ServiceUnavailable("the server is starting or stopping")
        return self._agents

    @agents.setter
    def agents(self, value: AgentLookup | None) -> None:
        self._agents = value

    @property
    def ready(self) -> bool:
        return self._store is not None


Handler = Callable[[Request, Owner, ApiContext], Awaitable[Response]]
PublicHandler = Callable[[Request, ApiContext], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def check_formation(request: Request, ctx: ApiContext) -> None:
    """Under /api/{formation_id}/..., the id must be this formation's name."""
    formation = request.path_params.get("formation_id")
    if formation is not None and formation != ctx.config.name:
        raise ResourceNotFound("Formation not found", details={"formation_id": formation})


def endpoint(ctx: ApiContext, handler: Handler) -> Endpoint:
    """An authenticated endpoint: formation check, Owner, errors rendered as documents."""

    async def run(request: Request) -> Response:
        try:
            check_formation(request, ctx)
            owner = ctx.auth.authenticate(request.headers)
            return await handler(request, owner, ctx)
        except Exception as exc:
            return to_response(exc)

    run.__name__ = handler.__name__
    return run


def public(ctx: ApiContext, handler: PublicHandler) -> Endpoint:
    """An endpoint without auth (health, readiness)."""

    async def run(request: Request) -> Response:
        try:
            check_formation(request, ctx)
            return await handler(request, ctx)
        except Exception as exc:
            return to_response(exc)

    run.__name__ = handler.__name__
    return run


def by_method(ctx: ApiContext, handlers: Mapping[str, Handler]) -> Endpoint:
    """One route, several methods (so a 405 lists every allowed method)."""
    wrapped = {method: endpoint(ctx, h) for method, h in handlers.items()}
    if "GET" in wrapped:
        wrapped["HEAD"] = wrapped["GET"]

    async def run(request: Request) -> Response:
        return await wrapped[request.method](request)

    return run


def base_path(request: Request) -> str:
    """The `/api/{formation_id}` prefix when called under that alias, else "" (links keep it)."""
    formation = request.path_params.get("formation_id")
    return f"/api/{formation}" if formation is not None else ""


def request_url(request: Request, request_id: str) -> str:
    return f"{base_path(request)}/v1/requests/{request_id}"


async def wait_terminal(store: Store, req: StoredRequest, timeout: float) -> StoredRequest:
    """The request once terminal, or as it is after `timeout` seconds: woken by the store's
    change notifications, never by polling."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not req.is_terminal:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        if await store.wait_for_change(req.id, req.seq, remaining):
            req = await store.get(req.id)
    return req


def accepted(request: Request, req: StoredRequest) -> Response:
    """202: the request is durable and under way; where to poll for it."""
    url = request_url(request, req.id)
    body = {
        "request_id": req.id,
        "status": req.status.value,
        "delivery": "webhook" if req.webhook_url else "polling",
        "poll_url": url,
        "estimated_seconds": req.estimated_seconds,
    }
    return json_response(body, 202, {"Location": url})


async def status_document(ctx: ApiContext, req: StoredRequest) -> dict[str, Any]:
    """The status document with its delivery state (GET /v1/requests/{id}, sync answers).

    Only a webhook request costs an extra read (its latest delivery); a polling one never does."""
    if not req.webhook_url:
        return to_document(req, with_delivery=True)
    deliveries = await ctx.store.list_deliveries(req.id) if req.is_terminal else []
    return to_document(req, with_delivery=True, delivery=deliveries[-1] if deliveries else None)


async def answer(request: Request, req: StoredRequest, ctx: ApiContext) -> Response:
    """200 with the document once terminal (sync calls), else 202 with the true state now.

    An idempotent replay answers as the original call did: a sync original waits again."""
    store = ctx.store
    if req.mode is Mode.SYNC:
        req = await wait_terminal(store, req, ctx.config.async_.sync_wait)
        if req.is_terminal:
            return json_response(await status_document(ctx, req))
    # A fresh request reports the state it was committed in (pending); re-reading it to catch a
    # pickup in the same millisecond cost ~20% of submit throughput and told the caller nothing.
    return accepted(request, req)


def idempotency_key(request: Request, owner: Owner, data: dict[str, Any], path: str) -> IdempotencyKey | None:
    """The caller's idempotency key, scoped to (key, user, path) and bound to the body.

    `path` is the canonical /v1 one (e.g. /v1/chat, /v1/triggers/NAME), so a retry through the
    /api/{formation_id} alias finds the original."""
    key = next((v for h in IDEMPOTENCY_HEADERS if (v := request.headers.get(h)) is not None), None)
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidRequest(
            "idempotency key must be 1-255 printable ASCII characters without spaces",
            details={"field": "X-Muxi-Idempotency-Key"},
        )
    scope = f"{owner.key_id}:{owner.user_id}:{path}"
    return IdempotencyKey(key=key, scope=scope, fingerprint=fingerprint(data))


async def check_webhook_url(url: str, ctx: ApiContext) -> None:
    """422 unless `url` is a well-formed http(s) URL with a host that the SSRF guard accepts,
    and the formation can sign webhooks at all (a secret or an admin key): a URL accepted now
    but never called would be a silent loss."""
    if not ctx.config.webhook_signing_secret:
        raise InvalidRequest(
            "webhooks are disabled on this server: it has no async.webhook_secret or admin key to "
            "sign them with; poll GET /v1/requests/{id} instead",
            details={"field": "webhook_url"},
        )
    try:
        parts = urlsplit(url)
        shaped = parts.scheme in ("http", "https") and bool(parts.hostname)
        if shaped:
            parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        shaped = False
    if not shaped:
        raise InvalidRequest(
            "webhook_url must be an http(s) URL with a host", details={"field": "webhook_url"}
        )
    await check_url_async(url, ctx.config.async_.webhook_allow_hosts)


HISTORY_TTL_S = 5.0
"""A usable duration history is re-read at most this often per agent (estimates need not be
fresher); a history too short to use is re-read after SHORT_HISTORY_TTL_S, as it is about to change."""
SHORT_HISTORY_TTL_S = 0.2


async def estimate_for(ctx: ApiContext, agent_id: str, message: str) -> float:
    """`estimated_seconds` of a message for an agent: its recent p90 once it has history, else
    the heuristic of mode.py (message, and an LLM agent's tools and steps)."""
    agent = ctx.config.agent(agent_id)
    tools, steps = (len(agent.tools), agent.max_steps) if agent is not None and agent.is_llm else (0, 1)
    return estimate_seconds(message, await _history(agent_id, ctx), tool_count=tools, max_steps=steps)


async def _history(agent_id: str, ctx: ApiContext) -> list[float]:
    now = asyncio.get_running_loop().time()
    cached = ctx.history.get(agent_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    durations = await ctx.store.duration_history(agent_id)
    ttl = HISTORY_TTL_S if len(durations) >= MIN_HISTORY else SHORT_HISTORY_TTL_S
    ctx.history[agent_id] = (now + ttl, durations)
    return durations
