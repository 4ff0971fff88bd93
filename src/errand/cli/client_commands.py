"""The client-side commands: `chat`, `status`, `wait`, `respond`, `events`, `cancel`, `requests`,
`trigger`, `deliveries`, `redeliver`, `agents`.

Each talks to a running server through the SDK (errand.client); exit code 1 for an error from
the server, or a request that ended failed or cancelled; 2 when the request waits for input
(`errand respond ID VALUE` answers it).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from errand.cli import listings
from errand.cli import output as show
from errand.cli.options import (
    DEFAULT_URL,
    AdminOpt,
    JsonOpt,
    KeyOpt,
    RequestIdArg,
    TimeoutOpt,
    UrlOpt,
    UserOpt,
)
from errand.client import Client, RequestHandle, RequestStatus
from errand.errors import Unauthorized
from errand.models import LIST_LIMIT_MAX

__all__ = ["COMMANDS"]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_SHARED = (
    _option("url", UrlOpt, DEFAULT_URL),
    _option("key", KeyOpt, None),
    _option("admin_key", AdminOpt, None),
    _option("user", UserOpt, None),
    _option("as_json", JsonOpt, False),
)
"""The options every client command takes, in --help's order."""
_ADMIN_SHARED = tuple(p for p in _SHARED if p.name in ("url", "admin_key", "as_json"))
"""An admin command's: no client key, no user."""


@dataclass(frozen=True, slots=True)
class _Conn:
    """What the shared options say: which server, with which keys, for which user; and --json."""

    url: str
    admin_key: str | None
    as_json: bool
    key: str | None = None
    user: str | None = None
    admin: bool = False

    @contextmanager
    def session(self) -> Iterator[Client]:
        """The SDK client for a command; errors printed as `error CODE: message` (exit 1), and a
        refused or missing key explained in the CLI's own terms (the variable and the option)."""
        client = Client(self.url, client_key=self.key, admin_key=self.admin_key, user_id=self.user)
        with show.reporting(), _key_hint(self.key, self.admin_key, admin=self.admin), client:
            yield client


def _command(*, admin: bool = False) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A client command: the function's own parameters, with the shared options (`--url`,
    `--key`, `--admin-key`, `--user`, `--json`; an admin command's: `--url`, `--admin-key`,
    `--json`) standing where its keyword `conn` stands, and handed to it as one `_Conn`.

    Typer reads the command's parameters from its signature, so the shared ones are written here
    once rather than in every command."""
    shared = _ADMIN_SHARED if admin else _SHARED

    def wrap(run: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(run, eval_str=True)
        params = [q for p in own.parameters.values() for q in (shared if p.name == "conn" else [p])]

        @functools.wraps(run)
        def command(**options: Any) -> None:
            conn = _Conn(**{p.name: options.pop(p.name) for p in shared}, admin=admin)
            run(**options, conn=conn)

        command.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        return command

    return wrap


@contextmanager
def _key_hint(key: str | None, admin_key: str | None, *, admin: bool) -> Iterator[None]:
    """A 401 says to send a header; the CLI user sets a variable or passes an option instead."""
    try:
        yield
    except Unauthorized as exc:
        if admin and not admin_key:
            hint = "this needs the admin key: set ERRAND_ADMIN_KEY or pass --admin-key"
        elif not key and not admin_key:
            hint = (
                "no key given: set ERRAND_CLIENT_KEY or pass --key (admin: ERRAND_ADMIN_KEY or --admin-key)"
            )
        else:
            hint = f"the server refused the key ({exc.message}): check ERRAND_CLIENT_KEY / --key"
        raise Unauthorized(hint, details=exc.details) from None


def _wait(c: Client, request_id: str, timeout: float, quiet: bool) -> RequestStatus:
    """Wait for the end, with a live progress bar unless the output is for a program."""
    if quiet:
        return c.wait(request_id, timeout=timeout)
    try:
        with show.progress_bar(request_id) as view:
            return c.wait(request_id, timeout=timeout, on_progress=view.update)
    except KeyboardInterrupt:
        show.note(f"stopped waiting; the request goes on (errand wait {request_id})")
        raise typer.Exit(130) from None


def _finish(st: RequestStatus, as_json: bool) -> None:
    show.print_outcome(st, as_json=as_json)
    if st.needs_input:
        raise typer.Exit(2)
    if not st.is_success:
        raise typer.Exit(1)


@_command()
def chat(
    message: Annotated[str, typer.Argument(help="The message for the agent.")],
    use_async: Annotated[bool, typer.Option("--async", help="Queue it and return the request id.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --async: wait, showing progress.")] = False,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent id (default: the formation's).")] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST the result to this URL.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session id.")] = None,
    timeout: TimeoutOpt = 600.0,
    *,
    conn: _Conn,
) -> None:
    """Send a chat message: sync by default (waits with a progress bar if the server goes async)."""
    options: dict[str, Any] = {"agent_id": agent, "webhook_url": webhook, "session_id": session}
    with conn.session() as c:
        if use_async:
            handle = c.chat_async(message, **options)
            if not wait:
                show.print_handle(handle, as_json=conn.as_json)
                return
            st = _wait(c, handle.id, timeout, conn.as_json)
        else:
            st = c.chat(message, **options)
            if not st.is_complete:
                if not conn.as_json:
                    show.note(f"{st.id} outlived the sync wait and goes on in the background; waiting")
                st = _wait(c, st.id, timeout, conn.as_json)
    _finish(st, conn.as_json)


@_command()
def status(
    request_id: RequestIdArg,
    *,
    conn: _Conn,
    attempts: Annotated[
        bool,
        typer.Option("--attempts", help="Also list every attempt (an admin key also gets tracebacks)."),
    ] = False,
) -> None:
    """Show a request's status, progress and result (and, with --attempts, each attempt)."""
    with conn.session() as c:
        st = c.get_request(request_id)
        if attempts:
            show.print_attempts(st, c.attempts(request_id), as_json=conn.as_json)
        else:
            show.print_status(st, as_json=conn.as_json)


@_command()
def wait_command(request_id: RequestIdArg, timeout: TimeoutOpt = 600.0, *, conn: _Conn) -> None:
    """Wait for a request to end (progress bar), then print its result."""
    with conn.session() as c:
        st = _wait(c, request_id, timeout, conn.as_json)
    _finish(st, conn.as_json)


@_command()
def cancel(request_id: RequestIdArg, *, conn: _Conn) -> None:
    """Cancel a pending or running request."""
    with conn.session() as c:
        show.print_cancel(c.cancel(request_id), as_json=conn.as_json)


def _parse_value(text: str) -> Any:
    """VALUE: JSON when it parses as JSON (`true`, `3`, `{"ok": 1}`), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@_command()
def respond(
    request_id: RequestIdArg,
    value: Annotated[str, typer.Argument(help="The answer: JSON if it parses as JSON, else a string.")],
    input_id: Annotated[
        str | None, typer.Option("--input-id", help="The question answered (default: the outstanding one).")
    ] = None,
    *,
    conn: _Conn,
) -> None:
    """Answer the question a request waits on (status input_required); it then resumes."""
    with conn.session() as c:
        answer = c.respond(request_id, _parse_value(value), input_id=input_id)
        show.print_respond(answer, as_json=conn.as_json)


@_command()
def requests(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=LIST_LIMIT_MAX, help="At most this many (one page).")
    ] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page (from a previous list).")] = None,
    *,
    conn: _Conn,
) -> None:
    """List your requests, newest first."""
    with conn.session() as c:
        page = c.list_requests(status=status, limit=limit, cursor=cursor)
        show.print_requests(page, as_json=conn.as_json)


def _parse_data(text: str) -> Any:
    """--data: inline JSON, or @file with JSON in it."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        return json.loads(raw)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"expected JSON or @file.json ({exc})", param_hint="--data") from None


@_command()
def trigger(
    name: Annotated[str, typer.Argument(help="Trigger name (triggers/NAME.md on the server).")],
    data: Annotated[str, typer.Option("--data", help="Event data: JSON, or @file.json.")] = "{}",
    sync: Annotated[
        bool | None, typer.Option("--sync/--async", help="Default: the trigger's own setting, else async.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="If queued: wait, showing progress.")] = False,
    timeout: TimeoutOpt = 600.0,
    *,
    conn: _Conn,
) -> None:
    """Fire a trigger with event data."""
    payload = _parse_data(data)
    with conn.session() as c:
        fired = c.fire_trigger(name, payload, use_async=None if sync is None else not sync)
        if isinstance(fired, RequestHandle):
            if not wait:
                show.print_handle(fired, as_json=conn.as_json)
                return
            fired = _wait(c, fired.id, timeout, conn.as_json)
    _finish(fired, conn.as_json)


@_command()
def events(
    request_id: RequestIdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep following until the request ends (resumes on drops).")
    ] = False,
    after: Annotated[
        int | None, typer.Option("--after", min=0, help="Start after this event id (as Last-Event-ID).")
    ] = None,
    *,
    conn: _Conn,
) -> None:
    """Print a request's events (progress, content, tool calls, retries, the end); with --follow,
    live until the request ends. --json: one JSON object per event and line."""
    with conn.session() as c:
        try:
            for event in c.events(request_id, after=after, follow=follow):
                listings.print_event(event, as_json=conn.as_json)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


@_command()
def deliveries(request_id: RequestIdArg, *, conn: _Conn) -> None:
    """Show a request's webhook deliveries and every attempt (status code, error, time)."""
    with conn.session() as c:
        listings.print_deliveries(request_id, c.deliveries(request_id), as_json=conn.as_json)


@_command(admin=True)
def redeliver(request_id: RequestIdArg, *, conn: _Conn) -> None:
    """Send an ended request's webhook again, as a new delivery (needs the admin key)."""
    with conn.session() as c:
        listings.print_redelivery(request_id, c.redeliver(request_id), as_json=conn.as_json)


@_command()
def agents(*, conn: _Conn) -> None:
    """List the formation's agents: kind, expected duration, tools."""
    with conn.session() as c:
        listings.print_agents(c.agents(), as_json=conn.as_json)


COMMANDS: dict[str, Callable[..., None]] = {
    "chat": chat,
    "status": status,
    "wait": wait_command,
    "respond": respond,
    "events": events,
    "cancel": cancel,
    "requests": requests,
    "trigger": trigger,
    "deliveries": deliveries,
    "redeliver": redeliver,
    "agents": agents,
}
"""Name -> command, in the order `errand --help` lists them."""
