"""The server-side commands: `serve`, `worker`, `migrate`, `webhook-secret` and `init`.

A bad formation.yaml ends them with a red message naming the key and exit code 2 (no traceback).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from errand import __version__
from errand.cli import output as show
from errand.cli.options import AccessLogOpt, ConfigOpt, LogFormatOpt, LogLevelOpt, NoMigrateOpt
from errand.cli.runtime import (
    migrate_store,
    read_webhook_secret,
    run_on_uvloop,
    run_workers,
    setup_logging,
)
from errand.cli.scaffold import existing, write_formation
from errand.config import Config, load_config

__all__ = ["COMMANDS"]

log = logging.getLogger("errand.cli")


def config_or_exit(path: Path | None) -> Config:
    """The formation, or a red message naming the bad key and exit code 2 (no traceback)."""
    with show.reporting():
        return load_config(path)


def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    no_workers: Annotated[
        bool, typer.Option("--no-workers", help="API only; run `errand worker` apart.")
    ] = False,
    no_migrate: NoMigrateOpt = False,
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="Do not serve the web console at /ui (as ui.enabled: false).")
    ] = False,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    access_log: AccessLogOpt = None,
) -> None:
    """Serve the HTTP API, with workers unless --no-workers, and the web console at /ui unless
    --no-ui. Pending migrations are applied at start unless --no-migrate (several processes
    starting at once is safe: they serialize)."""
    cfg = config_or_exit(config)
    if no_ui:
        cfg = cfg.model_copy(update={"ui": cfg.ui.model_copy(update={"enabled": False})})
    with show.reporting():
        cfg = setup_logging(cfg, level=log_level, format=log_format, access_log=access_log)
    if cfg.logging.format == "json":  # stderr holds only JSON lines: the banner is one of them
        where = f"http://{host}:{port}, workers {'off' if no_workers else 'on'}"
        where += f", console {f'http://{host}:{port}/ui' if cfg.ui.enabled else 'off'}"
        log.info("errand %s serving formation %s at %s", __version__, cfg.name, where)
    else:
        show.banner(cfg, host=host, port=port, workers=not no_workers)
    from errand.api.app import run_server

    run_server(cfg, host, port, not no_workers, migrate=not no_migrate)


def worker(
    config: ConfigOpt = None,
    no_migrate: NoMigrateOpt = False,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Run workers (and webhook delivery) without HTTP, until SIGINT/SIGTERM; then stop cleanly.
    Any number of worker processes may share one PostgreSQL database."""
    cfg = config_or_exit(config)
    with show.reporting():
        setup_logging(cfg, level=log_level, format=log_format)
    log.info("errand %s worker · formation %s · %s", __version__, cfg.name, show.mask_url(cfg.storage_url))
    with show.reporting():  # a handler that cannot be imported is a ConfigError: exit 2
        run_on_uvloop(run_workers(cfg, migrate=not no_migrate))
    log.info("workers stopped")


def migrate(config: ConfigOpt = None) -> None:
    """Apply pending database migrations and print their names."""
    cfg = config_or_exit(config)
    with show.reporting():
        applied = asyncio.run(migrate_store(cfg))
    for name in applied:
        show.out.print(name)
    if not applied:
        show.note("schema already current")


def webhook_secret(config: ConfigOpt = None) -> None:
    """Print the secret webhooks are signed with (give it to your receivers; keep it secret).
    It is async.webhook_secret when set, else the one generated for this formation's database
    and shared by every process on it (created by this command if the database has none yet)."""
    cfg = config_or_exit(config)
    with show.reporting():
        secret = asyncio.run(read_webhook_secret(cfg))
    typer.echo(secret)  # plain stdout, so `$(errand webhook-secret)` gets exactly the secret
    if cfg.async_.webhook_secret:
        show.note("from async.webhook_secret in the formation")
    else:
        show.note("generated for this database; set async.webhook_secret to sign with your own")


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new formation.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented formation.yaml, an example Python agent and an example trigger."""
    present = existing(directory)
    if present and not force:
        names = ", ".join(str(p) for p in present)
        show.print_error("EXISTS", f"{names} already exist; use --force to overwrite")
        raise typer.Exit(2)
    result = write_formation(directory)
    for path in result.written:
        show.out.print(f"wrote {path}")
    show.out.print(f"client key: [bold]{result.client_key}[/]")
    show.out.print(f"admin key:  [bold]{result.admin_key}[/]")
    show.note(
        "These keys are shown once; they are the defaults in formation.yaml "
        "(ERRAND_CLIENT_KEY / ERRAND_ADMIN_KEY override them)."
    )
    show.note(f"next: errand serve --config {directory / 'formation.yaml'}")


COMMANDS: dict[str, Callable[..., None]] = {
    "serve": serve,
    "worker": worker,
    "migrate": migrate,
    "webhook-secret": webhook_secret,
    "init": init,
}
"""Name -> command, in the order `errand --help` lists them."""
