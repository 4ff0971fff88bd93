"""What the server-side commands run: the worker process, waiting for the database, migrations.

Server-side modules (engine, delivery, store) are imported inside these functions, so that
`import errand.cli` -- and with it every client command -- starts fast and needs no driver.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from errand.backoff import Backoff
from errand.cli import output as show
from errand.clock import Clock, SystemClock
from errand.config import Config
from errand.errors import StoreUnavailable

if TYPE_CHECKING:
    from errand.store.base import Store

__all__ = [
    "migrate_store",
    "open_when_reachable",
    "read_webhook_secret",
    "run_on_uvloop",
    "run_workers",
    "store_options",
]

_DATABASE_WAIT = Backoff(initial=0.1, maximum=5.0)
"""Between tries to open a PostgreSQL store that does not answer yet."""


def store_options(cfg: Config, clock: Clock) -> dict[str, Any]:
    """open_store's options, as api/app.py passes them."""
    return {"clock": clock, **cfg.store_options}


async def run_workers(cfg: Config, *, migrate: bool = True) -> None:
    """Worker and webhook dispatcher on one store until SIGINT/SIGTERM (TaskGroup: one failing
    stops both). Any number of these processes may share a database; they all sign webhooks with
    the one secret of delivery/secret.py."""
    from errand.agents.registry import AgentRegistry
    from errand.delivery.dispatcher import run_dispatcher
    from errand.engine.settings import WorkerSettings
    from errand.engine.worker import Worker
    from errand.schedules.scheduler import Scheduler
    from errand.triggers import load_triggers

    clock = SystemClock()
    agents = AgentRegistry.from_config(cfg)  # ConfigErrors first, before the database is touched
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
    except ExceptionGroup as group:  # the first failure is the cause; the other loop was cancelled
        raise group.exceptions[0] from None
    finally:
        await agents.aclose()  # model clients' connections, once no attempt runs
        if store is not None:
            await store.close()


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
            show.note(f"database unavailable ({exc.message}); retrying in {delay:.1f}s")
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
