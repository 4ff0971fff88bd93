"""What every endpoint stands on: the ApiContext, the endpoint wrapper, the formation prefix.

There is no per-request dependency injection: `create_app` builds one ApiContext, the
lifespan fills in the store, the agents and the triggers, and each endpoint is a plain coroutine
`(request, owner, ctx) -> Response` wrapped once by `endpoint()`, which checks the formation
prefix, authenticates, and turns any exception into the error document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Authenticator, Owner
from errand.api.errors import to_response
from errand.api.session_auth import authenticate
from errand.clock import Clock, SystemClock
from errand.config import Config
from errand.errors import ResourceNotFound, ServiceUnavailable
from errand.logs import REQUEST_ID
from errand.store.base import Store
from errand.triggers import Trigger

T = TypeVar("T")


class NamedAgent(Protocol):
    @property
    def id(self) -> str: ...


class AgentLookup(Protocol):
    """What the API needs of the agent registry (the API never runs agents)."""

    def get(self, agent_id: str | None) -> NamedAgent: ...


class ApiContext:
    """The app's shared parts; `store`, `agents` and `triggers` are set by the lifespan."""

    __slots__ = ("_agents", "_store", "auth", "clock", "config", "feeds", "history", "triggers")

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        """The app's clock: console session times, and what schedules count fire times from."""
        self.auth = Authenticator(config.keys.client, config.keys.admin, config.keys.viewer)
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
        return _started(self._store)

    @store.setter
    def store(self, value: Store | None) -> None:
        self._store = value

    @property
    def agents(self) -> AgentLookup:
        return _started(self._agents)

    @agents.setter
    def agents(self, value: AgentLookup | None) -> None:
        self._agents = value


def _started(part: T | None) -> T:
    """A part the lifespan sets: 503 before startup has set it and after shutdown has cleared it."""
    if part is None:
        raise ServiceUnavailable("the server is starting or stopping")
    return part


Handler = Callable[[Request, Owner, ApiContext], Awaitable[Response]]
PublicHandler = Callable[[Request, ApiContext], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def check_formation(request: Request, ctx: ApiContext) -> None:
    """Under /api/{formation_id}/..., the id must be this formation's name."""
    formation = request.path_params.get("formation_id")
    if formation is not None and formation != ctx.config.name:
        raise ResourceNotFound("Formation not found", details={"formation_id": formation})


def endpoint(ctx: ApiContext, handler: Handler) -> Endpoint:
    """An authenticated endpoint: formation check, Owner (a key, or the console session cookie:
    api/session_auth.py, which also refuses a viewer's changes), errors rendered as documents."""

    async def run(request: Request) -> Response:
        try:
            path_id = request.path_params.get("request_id")
            if path_id is not None:  # this request's log lines (the access line too) name it
                REQUEST_ID.set(path_id)
            check_formation(request, ctx)
            owner = await authenticate(request, ctx.auth, lambda: ctx.store)
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


def public_by_method(ctx: ApiContext, handlers: Mapping[str, PublicHandler]) -> Endpoint:
    """As by_method, for endpoints that do their own authentication (the console session)."""
    wrapped = {method: public(ctx, h) for method, h in handlers.items()}
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
