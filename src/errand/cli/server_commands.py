"""The server-side commands: `serve`, `worker`, `migrate`, `webhook-secret` and `init`.

Only their options live here, so that `import errand.cli` needs no server package: each command
first checks that the server is installed (cli/extras.py; else one line naming the extra, exit
2), then imports cli/serving.py, which does the work. `init` writes files and needs nothing more.
A bad formation.yaml ends them with a red message naming the key and exit code 2 (no traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from errand.cli import output as show
from errand.cli.extras import missing_server_packages, server_hint
from errand.cli.options import AccessLogOpt, ConfigOpt, LogFormatOpt, LogLevelOpt, NoMigrateOpt
from errand.cli.scaffold import existing, write_formation

__all__ = ["COMMANDS"]

SERVER_NOT_INSTALLED = "SERVER_NOT_INSTALLED"


def require_server(command: str) -> None:
    """Exit 2 with one line naming `pip install 'errand[server]'` when the server is missing."""
    missing = missing_server_packages()
    if missing:
        show.print_error(SERVER_NOT_INSTALLED, server_hint(command, missing))
        raise typer.Exit(2)


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
    require_server("serve")
    from errand.cli import serving

    overrides: dict[str, str | bool | None] = {
        "level": log_level,
        "format": log_format,
        "access_log": access_log,
    }
    serving.serve(
        config,
        host=host,
        port=port,
        workers=not no_workers,
        migrate=not no_migrate,
        ui=not no_ui,
        log_overrides=overrides,
    )


def worker(
    config: ConfigOpt = None,
    no_migrate: NoMigrateOpt = False,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Run workers (and webhook delivery) without HTTP, until SIGINT/SIGTERM; then stop cleanly.
    Any number of worker processes may share one PostgreSQL database."""
    require_server("worker")
    from errand.cli import serving

    serving.worker(config, migrate=not no_migrate, log_overrides={"level": log_level, "format": log_format})


def migrate(config: ConfigOpt = None) -> None:
    """Apply pending database migrations and print their names."""
    require_server("migrate")
    from errand.cli import serving

    serving.migrate(config)


def webhook_secret(config: ConfigOpt = None) -> None:
    """Print the secret webhooks are signed with (give it to your receivers; keep it secret).
    It is async.webhook_secret when set, else the one generated for this formation's database
    and shared by every process on it (created by this command if the database has none yet)."""
    require_server("webhook-secret")
    from errand.cli import serving

    serving.webhook_secret(config)


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
