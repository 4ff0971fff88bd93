"""What the server-side commands run: the worker process, waiting for the database, migrations.

Server-side modules (engine, delivery, store) are imported inside these functions, so that
`import errand.cli` -- and with it every client command -- starts fast and needs no driver.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from errand.backoff import Backoff
from errand.clock import Clock, SystemClock
from errand.config import Config
from errand.errors import ConfigError, StoreUnavailable

if TYPE_CHECKING:
    from errand.store.base import Store

__all__ = [
    "formation_secrets",
    "migrate_store",
    "open_when_reachable",
    "read_webhook_secret",
    "run_on_uvloop",
    "run_workers",
    "setup_logging",
    "store_options",
]

log = logging.getLogger("errand.cli")

_DATABASE_WAIT = Backoff(initial=0.1, maximum=5.0)
"""Between tries to open a PostgreSQL store that does not answer yet."""


def setup_logging(cfg: Config, **overrides: str | bool | None) -> Config:
    """Configure the process's logging from `logging:` with the command-line `overrides`
    (level, format, access_log; None: as configured); the Config with the settings in effect.
    A bad value is a ConfigError naming the option."""
    from pydantic import ValidationError

    from errand import logs

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = logs.LogSettings.model_validate({**cfg.logging.model_dump(), **given})
    except ValidationError as exc:
        problems = [f"--{'-'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid logging option: " + "; ".join(problems)) from None
    logs.configure(settings, secrets=formation_secrets(cfg))
    return cfg.model_copy(update={"logging": settings})


def formation_secrets(cfg: Config) -> list[str]:
    """Every configured value no log line may show: client and admin keys, the webhook secret,
    model API keys, the database password (as written and decoded)."""
    models = [a.model for a in cfg.agents if a.model is not None]
    if cfg.router is not None:
        models.append(cfg.router.model)
    found = [*cfg.keys.client, *cfg.keys.admin, *(m.api_key for m in models if m.api_key)]
    if cfg.async_.webhook_secret:
        found.append(cfg.async_.webhook_secret)
    password = urlsplit(cfg.storage.url).password if "://" in cfg.storage.url else None
    return [*found, password, unquote(password)] if password else found


def store_options(cfg: Config, clock: Clock) -> dict[str, Any]:
    """open_store's options, as api/app.py passes them."""
    return {"clock": clock, **cfg.store_options}


async def run_workers(cfg: Config, *, migrate: bool = True) -> None:
    """Worker, scheduler and webhook dispatcher on one store until SIGINT/SIGTERM (TaskGroup:
    one failing stops all). Any number of these processes may share a database (each schedule
    fire time fires once in all); they all sign webhooks with the one secret of delivery/secret.py."""
    from errand import tracing
    from errand.agents.registry import AgentRegistry
    from errand.delivery.dispatcher import run_dispatcher
    from errand.engine.settings import WorkerSettings
    from errand.engine.worker import Worker
    from errand.schedules.scheduler import Scheduler
    from errand.triggers import load_triggers

    clock = SystemClock()
    agents = AgentRegistry.from_config(cfg)  # ConfigErrors first, before the database is touched
    if cfg.tracing.enabled:
        tracing.configure(
            service_name=cfg.tracing.service_name or "errand", exporter=cfg.tracing.exporter or "otlp"
        )
    triggers = load_triggers(cfg.base_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store: Store | None = None
    try:
        store = await open_when_reachable(cfg, clock, migrate=migrate, stop=stop)
        if store is None:  # stopped while waiting for the database
            return
        worker = Worker(store, agents, WorkerSettings.from_config(cfg), clock=clock)
        scheduler = Scheduler(store, cfg, triggers, lambda a: agents.get(a).id, clock)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(worker.run(stop), name="errand-worker")
            if cfg.schedules.enabled:
                tasks.create_task(scheduler.run(stop), name="errand-scheduler")
            tasks.create_task(run_dispatcher(store, cfg, stop, clock=clock), name="errand-dispatcher")
            if cfg.metrics.port is not None:
                from errand.cli.metrics_port import serve_metrics

                tasks.create_task(serve_metrics(cfg, store, stop), name="errand-metrics-port")
    except ExceptionGroup as group:  # the first failure is the cause; the other loop was cancelled
        raise group.exceptions[0] from None
    finally:
        await agents.aclose()  # model clients' connections, once no attempt runs
        if store is not None:
            await store.close()
        if cfg.tracing.enabled:
            tracing.shutdown()  # flushes the spans still batched


async def open_when_reachable(
    cfg: Config, clock: Clock, *, migrate: bool, stop: asyncio.Event
) -> Store | None:
    """The worker's store, once its PostgreSQL server answers. A worker started while the
    server is down or restarting (a deploy racing a database failover) waits for it with
    backoff, as running workers do, instead of exiting; None if stopped meanwhile. SQLite
    errors at open are local and permanent (a bad path), so they end the command at once."""
    from errand.store import open_store

    waits = _DATABASE_WAIT.delays()
    while True:
        try:
            return await open_store(cfg.storage_url, migrate=migrate, **store_options(cfg, clock))
        except StoreUnavailable as exc:
            if cfg.storage_url.startswith("sqlite:"):
                raise
            delay = next(waits)
            log.warning("database unavailable (%s); retrying in %.1fs", exc.message, delay)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
            return None


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, as `errand serve` does through uvicorn: a worker
    mostly talks to its database, and uvloop's socket I/O costs less CPU per round trip than
    the default loop's (the worker profile was dominated by selector transport writes)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        asyncio.run(main)
        return
    uvloop.run(main)


async def migrate_store(cfg: Config) -> list[str]:
    """Apply pending migrations; their names."""
    from errand.store import open_store

    store = await open_store(cfg.storage_url, migrate=False, **store_options(cfg, SystemClock()))
    try:
        return await store.migrate()
    finally:
        await store.close()


async def read_webhook_secret(cfg: Config) -> str:
    """What this formation's webhooks are signed with: async.webhook_secret, else the secret of
    its database (generated now if none is stored yet). The schema must be migrated first: this
    command never migrates, so it is safe beside `serve --no-migrate` deployments."""
    from errand.delivery.secret import signing_secret
    from errand.store import open_store

    if cfg.async_.webhook_secret:
        return cfg.async_.webhook_secret
    store = await open_store(cfg.storage_url, migrate=False, **store_options(cfg, SystemClock()))
    try:
        if not await store.schema_current():
            raise StoreUnavailable("migrations pending: run `errand migrate` (or `errand serve`) first")
        return await signing_secret(cfg, store)
    finally:
        await store.close()
