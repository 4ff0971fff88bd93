"""What the server commands do: `serve`, `worker`, `migrate`, `webhook-secret`.

Imported only once a server command runs and cli/extras.py has found the server installed
(cli/server_commands.py holds their options): this module reads the formation (pydantic, YAML)
and starts the server stack, which a client-only install (`pip install errand`) does not have.
A bad formation.yaml, a handler that cannot be imported and a port that is taken each end the
command with one red line and exit code 2, before the banner (no traceback).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from errand.cli import output as show
from errand.cli.banner import banner
from errand.cli.runtime import (
    migrate_store,
    read_webhook_secret,
    run_on_uvloop,
    run_workers,
    setup_logging,
)
from errand.config import Config, load_config
from errand.version import __version__

__all__ = ["migrate", "serve", "webhook_secret", "worker"]

log = logging.getLogger("errand.cli")


def config_or_exit(path: Path | None) -> Config:
    """The formation, or a red message naming the bad key and exit code 2 (no traceback)."""
    with show.reporting():
        return load_config(path)


def serve(
    config: Path | None,
    *,
    host: str,
    port: int,
    workers: bool,
    migrate: bool,
    ui: bool = True,
    log_overrides: dict[str, str | bool | None],
) -> None:
    """Check everything that can be checked before the banner (the formation, every handler and
    trigger, the port), then serve until SIGINT/SIGTERM. `ui=False` (--no-ui): no console."""
    from errand.api.app import bind_listener, build_formation, run_server

    cfg = config_or_exit(config)
    if not ui:
        cfg = cfg.model_copy(update={"ui": cfg.ui.model_copy(update={"enabled": False})})
    with show.reporting():
        cfg = setup_logging(cfg, **log_overrides)
        started = build_formation(cfg)  # an unimportable handler: one line naming its agent, exit 2
        listener = bind_listener(host, port)  # a port in use: one line naming it and --port, exit 2
    if cfg.logging.format == "json":  # stderr holds only JSON lines: the banner is one of them
        where = f"http://{host}:{port}, workers {'on' if workers else 'off'}"
        where += f", console {f'http://{host}:{port}/ui' if cfg.ui.enabled else 'off'}"
        log.info("errand %s serving formation %s at %s", __version__, cfg.name, where)
    else:
        banner(cfg, host=host, port=port, workers=workers)
    run_server(cfg, host, port, workers, migrate=migrate, started=started, listener=listener)


def worker(config: Path | None, *, migrate: bool, log_overrides: dict[str, str | bool | None]) -> None:
    """Run workers (and webhook delivery) without HTTP until SIGINT/SIGTERM."""
    cfg = config_or_exit(config)
    with show.reporting():
        setup_logging(cfg, **log_overrides)
    log.info("errand %s worker · formation %s · %s", __version__, cfg.name, show.mask_url(cfg.storage_url))
    with show.reporting():  # a handler that cannot be imported is a ConfigError: exit 2
        run_on_uvloop(run_workers(cfg, migrate=migrate))
    log.info("workers stopped")


def migrate(config: Path | None) -> None:
    """Apply pending database migrations and print their names."""
    cfg = config_or_exit(config)
    with show.reporting():
        applied = asyncio.run(migrate_store(cfg))
    for name in applied:
        show.out.print(name)
    if not applied:
        show.note("schema already current")


def webhook_secret(config: Path | None) -> None:
    """Print the secret webhooks are signed with."""
    cfg = config_or_exit(config)
    with show.reporting():
        secret = asyncio.run(read_webhook_secret(cfg))
    typer.echo(secret)  # plain stdout, so `$(errand webhook-secret)` gets exactly the secret
    if cfg.async_.webhook_secret:
        show.note("from async.webhook_secret in the formation")
    else:
        show.note("generated for this database; set async.webhook_secret to sign with your own")
