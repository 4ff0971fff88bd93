"""`errand schedules list|show|create|pause|resume|run|delete`: schedules through the SDK.

They need the admin key (`--admin-key` or ERRAND_ADMIN_KEY). Exit code 1 for an error from the
server (shown as its code and message), as the other client commands.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from errand.cli import output as show
from errand.cli.options import DEFAULT_URL, AdminOpt, JsonOpt, UrlOpt
from errand.client import Client
from errand.errors import Unauthorized

__all__ = ["app"]

app = typer.Typer(name="schedules", help="Schedules: fire a trigger or an agent on a timetable (admin).")
IdArg = Annotated[str, typer.Argument(help="Schedule id or name.")]


def _client(url: str, admin_key: str | None) -> Client:
    """The SDK client with the admin key; without one, say so in the CLI's terms before asking
    the server (whose 401 would only say to send a header, whatever client key is set)."""
    if not admin_key:
        raise Unauthorized("errand schedules needs the admin key: set ERRAND_ADMIN_KEY or pass --admin-key")
    return Client(url, admin_key=admin_key)


def _print(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    when = doc.get("cron") or f"every {doc.get('every'):g}s"
    target = f"trigger {doc['trigger']}" if doc.get("trigger") else f"agent {doc.get('agent') or '(default)'}"
    state = "enabled" if doc.get("enabled") else "paused"
    show.out.print(
        f"[bold]{doc['name']}[/] ({doc['id']}, {doc['source']}): {when} {doc['timezone']} -> {target}; "
        f"{state}; next {doc.get('next_fire_at_iso') or '-'}; "
        f"failures {doc['consecutive_failures']}/{doc['max_failures'] or 'never'}"
    )


@app.command("list")
def list_command(url: UrlOpt = DEFAULT_URL, admin_key: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """Every schedule with its next fire time."""
    with show.reporting(), _client(url, admin_key) as c:
        found = c.list_schedules()
    if as_json:
        typer.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    for doc in found:
        _print(doc, False)
    if not found:
        show.note("no schedules")


@app.command("show")
def show_command(
    schedule: IdArg, url: UrlOpt = DEFAULT_URL, admin_key: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """One schedule."""
    with show.reporting(), _client(url, admin_key) as c:
        _print(c.get_schedule(schedule), as_json)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A name: letters, digits, _ and -.")],
    cron: Annotated[str | None, typer.Option("--cron", help="A cron expression, e.g. '0 9 * * 1-5'.")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Or a period, e.g. 30s, 15m.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone of the cron expression.")] = "UTC",
    trigger: Annotated[str | None, typer.Option("--trigger", help="Fire this trigger ...")] = None,
    data: Annotated[str, typer.Option("--data", help="... with this JSON data.")] = "{}",
    message: Annotated[str | None, typer.Option("--message", help="Or send this message ...")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="... to this agent (default agent).")] = None,
    overlap: Annotated[str, typer.Option("--overlap", help="skip | enqueue | cancel_previous")] = "skip",
    catch_up: Annotated[str, typer.Option("--catch-up", help="skip | one (missed while down)")] = "skip",
    max_failures: Annotated[int | None, typer.Option("--max-failures", help="Disable after N.")] = None,
    url: UrlOpt = DEFAULT_URL,
    admin_key: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a schedule."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise typer.BadParameter(f"expected JSON ({exc})", param_hint="--data") from None
    spec: dict[str, Any] = {"name": name, "cron": cron, "every": every, "timezone": timezone}
    spec |= {"overlap": overlap, "catch_up": catch_up, "max_failures": max_failures}
    spec |= {"trigger": trigger, "data": payload} if trigger else {"message": message, "agent": agent}
    with show.reporting(), _client(url, admin_key) as c:
        _print(c.create_schedule(**{k: v for k, v in spec.items() if v is not None}), as_json)


def _set_enabled(schedule: str, enabled: bool, url: str, admin_key: str | None, as_json: bool) -> None:
    with show.reporting(), _client(url, admin_key) as c:
        _print(c.update_schedule(schedule, enabled=enabled), as_json)


@app.command()
def pause(
    schedule: IdArg, url: UrlOpt = DEFAULT_URL, admin_key: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """Stop firing (until resumed)."""
    _set_enabled(schedule, False, url, admin_key, as_json)


@app.command()
def resume(
    schedule: IdArg, url: UrlOpt = DEFAULT_URL, admin_key: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """Fire again from the next fire time (the failure count starts again at 0)."""
    _set_enabled(schedule, True, url, admin_key, as_json)


@app.command()
def run(
    schedule: IdArg, url: UrlOpt = DEFAULT_URL, admin_key: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """Fire it now, outside its timetable: prints the request id."""
    with show.reporting(), _client(url, admin_key) as c:
        show.print_handle(c.run_schedule(schedule), as_json=as_json)


@app.command()
def delete(
    schedule: IdArg, url: UrlOpt = DEFAULT_URL, admin_key: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """Delete it (its past firings stay, as requests)."""
    with show.reporting(), _client(url, admin_key) as c:
        done = c.delete_schedule(schedule)
    if as_json:
        typer.echo(json.dumps(done))
    else:
        show.out.print(f"deleted {done['name']} ({done['id']})")
