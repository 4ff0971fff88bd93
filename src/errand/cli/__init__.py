"""The `errand` command: run the server and workers, or talk to a server through the SDK.

A composition root (with api/app.py): it may read the environment (through typer's `envvar=`) and
wire any module. Server-side modules are imported inside their commands, so the client commands
start fast and need no database driver. Exit codes: 0 ok; 1 an error from the server, or a
request that ended failed/cancelled (chat, wait); 2 bad usage or a bad formation.yaml.

    cli/server_commands.py   serve, worker, migrate, webhook-secret, init  (cli/runtime.py runs them)
    cli/client_commands.py   chat, status, wait, cancel, requests, trigger
    cli/schedule_commands.py schedules list|show|create|pause|resume|run|delete
    cli/output.py            what is printed, and errors -> exit codes
    cli/options.py           the shared options;  cli/scaffold.py  the files `init` writes
"""

from __future__ import annotations

from typing import Annotated

import typer

from errand.cli import client_commands, schedule_commands, server_commands
from errand.version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="errand",
    help="Durable async operations for AI agents: serve a formation, or talk to a running one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"errand {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Durable async operations for AI agents: serve a formation, or talk to a running one."""


for _name, _command in {**server_commands.COMMANDS, **client_commands.COMMANDS}.items():
    app.command(_name)(_command)
app.add_typer(schedule_commands.app)


def main() -> None:
    """Console entry point (`errand = errand.cli:main`)."""
    app()
