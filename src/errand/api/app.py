"""The composition root of the server: routes, lifespan (store, agents, triggers, worker,
webhook dispatcher), uvicorn runner.

Every API route exists at `/v1/...` and, identically, under `/api/{formation_id}/v1/...`
(MUXI's SDK path shape); `formation_id` must equal the configured name, else 404.
`/health` and `/ready` need no key; `/metrics` may (api/scrape.py). A trailing slash names the same route
(`/v1/chat/` is `/v1/chat`): Starlette would answer it with a bodiless 307 that clients do not
follow for a POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from errand import tracing
from errand.agents.registry import AgentRegistry
from errand.api.admin_deliveries import bulk_redeliver, list_all_deliveries
from errand.api.agents import get_agent, list_agents
from errand.api.attempts import list_attempts
from errand.api.bulk import bulk_cancel
from errand.api.chat import chat
from errand.api.connections import (
    ConnectionLimits,
    ListeningServer,
    bind_listener,
    limited_protocol,
    raise_fd_limit,
)
from errand.api.console import console_asset, console_page
from errand.api.console_session import ConsoleSessions
from errand.api.context import ApiContext, Endpoint, by_method, endpoint, public, public_by_method
from errand.api.deliveries import list_deliveries, redeliver, webhook_secret
from errand.api.docs import docs_asset, docs_page
from errand.api.errors import EXCEPTION_HANDLERS, json_response
from errand.api.inputs import answer_input
from errand.api.openapi import OpenApi
from errand.api.overview import overview
from errand.api.protocol_routes import a2a_routes_if_served, responses_routes
from errand.api.readiness import Readiness
from errand.api.requests import cancel_request, get_request, list_requests
from errand.api.schedules import (
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    run_schedule,
    update_schedule,
)
from errand.api.scrape import metrics_endpoint
from errand.api.sse import request_events
from errand.api.trailing_slash import NoTrailingSlash
from errand.api.triggers import fire_trigger, get_trigger, list_triggers, load_formation_triggers
from errand.clock import Clock, SystemClock
from errand.config import Config
from errand.delivery.dispatcher import run_dispatcher
from errand.engine.settings import WorkerSettings
from errand.engine.worker import Worker
from errand.metrics import PROCESS_INFO
from errand.schedules.scheduler import Scheduler
from errand.store import open_store
from errand.store.base import Store
from errand.triggers import Trigger
from errand.version import __version__

__all__ = ["Started", "bind_listener", "build_formation", "create_app", "run_server"]

log = logging.getLogger("errand.api")

WORKER_STOP_MARGIN_S = 10.0
"""Beyond the worker's own shutdown_grace, how long the lifespan waits before cancelling it."""
HTTP_DRAIN_S = 5
"""On SIGTERM, open HTTP calls (long-polls, sync waits) get this long before they are cut;
the work behind them is durable, and clients retry. Then the worker's grace begins."""


Started = tuple[AgentRegistry, Mapping[str, Trigger]]
"""The formation's agents and triggers, built (and so checked) before serving."""


def build_formation(config: Config) -> Started:
    """Every agent (a handler that cannot be imported is a ConfigError naming its key) and every
    trigger (checked against the agents)."""
    agents = AgentRegistry.from_config(config)
    return agents, load_formation_triggers(config, agents)


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    with_workers: bool = True,
    clock: Clock | None = None,
    migrate: bool = True,
    host: str = "127.0.0.1",
    started: Started | None = None,
) -> Starlette:
    """The errand ASGI app. A given `store` is used as is and not closed at shutdown; without
    one, the lifespan opens `config.storage_url` (and migrates it unless `migrate=False`, for
    operators who run `errand migrate` themselves: `/ready` then answers 503 "migrations
    pending" until they have) and closes it. `host` is the address served on: /metrics is open
    by default only on a loopback one (metrics.require_key). `started`: the agents and triggers
    `errand serve` already built to check them before its banner (else built here)."""
    clock = clock or SystemClock()
    ctx = ApiContext(config, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with _tracing(config):  # before the store: a missing extra stops the start at once
            opened = store or await open_store(
                config.storage_url, clock=clock, migrate=migrate, **config.store_options
            )
            try:
                async with _serving(app, ctx, opened, started, clock, with_workers=with_workers):
                    yield
            finally:
                ctx.store = None
                if store is None:
                    await opened.close()

    PROCESS_INFO.labels(f"api-{os.getpid()}", "api").set(1)
    app = Starlette(
        routes=_routes(ctx, metrics_endpoint(config, host, lambda: ctx.store)),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[Middleware(NoTrailingSlash)],
    )
    app.router.redirect_slashes = False
    app.state.ctx = ctx
    app.state.config = config
    return app


@contextlib.asynccontextmanager
async def _workers(
    store: Store, agents: AgentRegistry, ctx: ApiContext, clock: Clock, *, enabled: bool
) -> AsyncIterator[None]:
    """One in-process Worker while the app serves, and the scheduler beside it (entered after
    it, so it stops first: no firing at shutdown); stopped gracefully at shutdown."""
    if not enabled:
        yield
        return
    settings = WorkerSettings.from_config(ctx.config)
    worker = Worker(store, agents, settings, clock=clock)
    async with (
        _beside("worker", "errand-worker", worker.run, settings.shutdown_grace + WORKER_STOP_MARGIN_S),
        _scheduler(store, ctx, agents, clock),
    ):
        yield


@contextlib.asynccontextmanager
async def _scheduler(
    store: Store, ctx: ApiContext, agents: AgentRegistry, clock: Clock
) -> AsyncIterator[None]:
    """The scheduler (unless `schedules.enabled: false`): each fire time fires once in all processes."""
    if not ctx.config.schedules.enabled:
        yield
        return
    scheduler = Scheduler(store, ctx.config, ctx.triggers, lambda a: agents.get(a).id, clock)
    async with _beside("scheduler", "errand-scheduler", scheduler.run, WORKER_STOP_MARGIN_S):
        yield


@contextlib.contextmanager
def _tracing(config: Config) -> Iterator[None]:
    """Spans exported while the app runs, when tracing is on; flushed at the end."""
    if not config.tracing.enabled:
        yield
        return
    tracing.configure(
        service_name=config.tracing.service_name or "errand", exporter=config.tracing.exporter or "otlp"
    )
    try:
        yield
    finally:
        tracing.shutdown()  # flushes the spans still batched


@contextlib.asynccontextmanager
async def _serving(
    app: Starlette,
    ctx: ApiContext,
    store: Store,
    started: Started | None,
    clock: Clock,
    *,
    with_workers: bool,
) -> AsyncIterator[None]:
    """The open store's app: agents and triggers loaded (or those `errand serve` built), the
    dispatcher and the worker running."""
    config = ctx.config
    agents, ctx.triggers = started or build_formation(config)
    ctx.agents = agents
    ctx.store = store
    app.state.store, app.state.agents = store, agents
    try:
        async with (
            _dispatcher(store, config, clock, enabled=with_workers),
            _workers(store, agents, ctx, clock, enabled=with_workers),
        ):
            yield
    finally:
        await agents.aclose()  # after the worker: no attempt uses a model client now


@contextlib.asynccontextmanager
async def _dispatcher(store: Store, config: Config, clock: Clock, *, enabled: bool) -> AsyncIterator[None]:
    """The webhook dispatcher beside the worker. Entered first, so it stops last: results the
    worker finishes during its shutdown grace still get their first delivery attempt. It signs
    with async.webhook_secret, else the database's generated secret (read once the database
    can give it: a `--no-migrate` start waits for `errand migrate`)."""
    if not enabled:
        yield
        return
    run = functools.partial(run_dispatcher, store, config, clock=clock)
    grace = config.async_.webhook_timeout + WORKER_STOP_MARGIN_S
    async with _beside("webhook dispatcher", "errand-dispatcher", run, grace):
        yield


@contextlib.asynccontextmanager
async def _beside(
    what: str, name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], grace: float
) -> AsyncIterator[None]:
    """`run(stop)` as a task while the app serves; at shutdown `stop` is set, and the task is
    cancelled if it has not ended `grace` seconds later."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    task.add_done_callback(functools.partial(_report_exit, what))
    try:
        yield
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.warning("%s did not stop in time; cancelling it", what)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _report_exit(what: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the %s stopped with an error", what, exc_info=task.exception())


def _routes(ctx: ApiContext, metrics: Endpoint) -> list[BaseRoute]:
    v1: list[BaseRoute] = [
        Route("/v1/chat", endpoint(ctx, chat), methods=["POST"]),
        Route("/v1/requests", endpoint(ctx, list_requests), methods=["GET"]),
        Route(
            "/v1/requests/{request_id}",
            by_method(ctx, {"GET": get_request, "DELETE": cancel_request}),
            methods=["GET", "DELETE"],
        ),
        Route("/v1/requests/{request_id}/events", endpoint(ctx, request_events), methods=["GET"]),
        Route("/v1/requests/{request_id}/deliveries", endpoint(ctx, list_deliveries), methods=["GET"]),
        Route("/v1/requests/{request_id}/attempts", endpoint(ctx, list_attempts), methods=["GET"]),
        Route("/v1/requests/{request_id}/redeliver", endpoint(ctx, redeliver), methods=["POST"]),
        Route("/v1/requests/{request_id}/input", endpoint(ctx, answer_input), methods=["POST"]),
        Route("/v1/admin/webhook-secret", endpoint(ctx, webhook_secret), methods=["GET"]),
        Route("/v1/admin/overview", endpoint(ctx, overview), methods=["GET"]),
        Route("/v1/admin/deliveries", endpoint(ctx, list_all_deliveries), methods=["GET"]),
        Route("/v1/admin/deliveries/redeliver", endpoint(ctx, bulk_redeliver), methods=["POST"]),
        Route("/v1/admin/requests/cancel", endpoint(ctx, bulk_cancel), methods=["POST"]),
        Route("/v1/triggers", endpoint(ctx, list_triggers), methods=["GET"]),
        Route(
            "/v1/triggers/{name}",
            by_method(ctx, {"GET": get_trigger, "POST": fire_trigger}),
            methods=["GET", "POST"],
        ),
        *responses_routes(ctx),
        Route("/v1/agents", endpoint(ctx, list_agents), methods=["GET"]),
        Route("/v1/agents/{agent_id}", endpoint(ctx, get_agent), methods=["GET"]),
        *_schedule_routes(ctx),
        Route("/v1/health", public(ctx, health), methods=["GET"]),
    ]
    sessions = ConsoleSessions(ctx)
    ui_session = {"POST": sessions.sign_in, "GET": sessions.current, "DELETE": sessions.sign_out}
    console: list[BaseRoute] = [
        Route("/ui", public(ctx, console_page), methods=["GET"]),
        Route("/ui/static/{asset}", public(ctx, console_asset), methods=["GET"]),
    ]
    return [
        *v1,
        Route("/ui/session", public_by_method(ctx, ui_session), methods=["GET", "POST", "DELETE"]),
        *(console if ctx.config.ui.enabled else []),
        Route("/health", public(ctx, health), methods=["GET"]),
        Route("/ready", public(ctx, Readiness().ready), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", public(ctx, OpenApi(__version__).serve), methods=["GET"]),
        Route("/docs", public(ctx, docs_page), methods=["GET"]),
        Route("/docs/{asset}", public(ctx, docs_asset), methods=["GET"]),
        Mount("/api/{formation_id}", routes=v1),
        *a2a_routes_if_served(ctx),
    ]


def _schedule_routes(ctx: ApiContext) -> list[BaseRoute]:
    """The /v1/schedules routes (admin key: api/schedules.py)."""
    return [
        Route(
            "/v1/schedules",
            by_method(ctx, {"GET": list_schedules, "POST": create_schedule}),
            methods=["GET", "POST"],
        ),
        Route(
            "/v1/schedules/{schedule_id}",
            by_method(ctx, {"GET": get_schedule, "PATCH": update_schedule, "DELETE": delete_schedule}),
            methods=["GET", "PATCH", "DELETE"],
        ),
        Route("/v1/schedules/{schedule_id}/run", endpoint(ctx, run_schedule), methods=["POST"]),
    ]


async def health(request: Request, ctx: ApiContext) -> Response:
    """Liveness: the process answers HTTP (no database access), and which errand it is."""
    return json_response({"status": "ok", "version": __version__})


def run_server(
    config: Config,
    host: str = "127.0.0.1",
    port: int = 8001,
    with_workers: bool = True,
    *,
    migrate: bool = True,
    started: Started | None = None,
    listener: socket.socket | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM: uvicorn stops accepting, drains open calls for HTTP_DRAIN_S,
    then the lifespan stops the worker gracefully and closes the store. As uvicorn does, the
    signal is re-raised afterwards, so the process ends by it. Exits with status 3 when
    startup fails (e.g. a broken handler or an unreachable database). Connections are held to
    the `server.*` limits (api/connections.py), after raising the soft open-file limit.
    `listener`: the socket `bind_listener` bound (else uvicorn binds host:port itself)."""
    limits = ConnectionLimits.from_config(config, raise_fd_limit())
    app = create_app(config, with_workers=with_workers, migrate=migrate, host=host, started=started)
    server = ListeningServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="uvloop",
            http=limited_protocol(limits),
            ws="none",
            lifespan="on",
            log_config=None,  # errand.logs configured every logger (uvicorn's too)
            access_log=config.logging.access_log,
            server_header=False,
            timeout_graceful_shutdown=HTTP_DRAIN_S,
            proxy_headers=True,
            forwarded_allow_ips=",".join(config.server.forwarded_allow_ips),
        )
    )
    server.run(sockets=None if listener is None else [listener])
    if not server.started:
        raise SystemExit(3)
