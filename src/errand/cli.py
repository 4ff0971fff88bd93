"""The `errand` command: run the server and workers, or talk to a server through the SDK.

A composition root (with api/app.py): it may read the environment (through typer's `envvar=`) and
wire any module. Server-side modules are imported inside their commands, so the client commands
start fast and need no database driver. Exit codes: 0 ok; 1 an error from the server, or a
request that ended failed/cancelled (chat, wait); 2 bad usage or a bad formation.yaml.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from errand import _cli_output as show
from errand._cli_init import existing, write_formation
from errand.client import Client, RequestHandle, RequestStatus
from errand.clock import Clock, SystemClock
from errand.config import Config, load_config
from errand.errors import ConfigError, ErrandError, StoreUnavailable

if TYPE_CHECKING:
    from errand.store.base import Store

app = typer.Typer(
    name="errand",
    help="Durable async operations for AI agents: serve a formation, or talk to a running one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="formation.yaml (default: $ERRAND_CONFIG, else ./formation.yaml)"),
]
UrlOpt = Annotated[str, typer.Option("--url", envvar="ERRAND_URL", help="errand server URL.")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="ERRAND_CLIENT_KEY", help="Client key.")]
AdminOpt = Annotated[str | None, typer.Option("--admin-key", envvar="ERRAND_ADMIN_KEY", help="Admin key.")]
UserOpt = Annotated[str | None, typer.Option("--user", envvar="ERRAND_USER_ID", help="End-user id.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON, for programs.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.0, help="Give up waiting after this many seconds.")
]
DEFAULT_URL = "http://127.0.0.1:8001"


def main() -> None:
    """Console entry point (`errand = errand.cli:main`)."""
    app()


@contextmanager
def _reporting() -> Iterator[None]:
    """Errors become `error CODE: message` in red; exit code 2 for a bad formation, else 1."""
    try:
        yield
    except ErrandError as exc:
        show.print_error(exc.code, exc.message)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
    except TimeoutError as exc:
        show.print_error("TIMEOUT", str(exc))
        raise typer.Exit(1) from None


# -- server side ------------------------------------------------------------------------------


def _config_or_exit(path: Path | None) -> Config:
    """The formation, or a red message naming the bad key and exit code 2 (no traceback)."""
    with _reporting():
        return load_config(path)


def _store_options(cfg: Config, clock: Clock) -> dict[str, Any]:
    """open_store's options, as api/app.py passes them."""
    return {"clock": clock, **cfg.store_options}


NoMigrateOpt = Annotated[
    bool,
    typer.Option(
        "--no-migrate",
        help="Do not apply migrations at start (run `errand migrate` first); "
        "until they are applied, /ready answers 503 and work waits.",
    ),
]


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    no_workers: Annotated[
        bool, typer.Option("--no-workers", help="API only; run `errand worker` apart.")
    ] = False,
    no_migrate: NoMigrateOpt = False,
) -> None:
    """Serve the HTTP API, with workers unless --no-workers. Pending migrations are applied at
    start unless --no-migrate (several processes starting at once is safe: they serialize)."""
    cfg = _config_or_exit(config)
    show.banner(cfg, host=host, port=port, workers=not no_workers)
    from errand.api.app import run_server

    run_server(cfg, host, port, not no_workers, migrate=not no_migrate)


async def _run_workers(cfg: Config, *, migrate: bool = True) -> None:
    """Worker and webhook dispatcher on one store until SIGINT/SIGTERM (TaskGroup: one failing
    stops both). Any number of these processes may share a database. Without a signing secret
    (no async.webhook_secret, no admin key) there is no dispatcher: the API refuses webhooks."""
    from errand.agents.registry import AgentRegistry
    from errand.delivery.dispatcher import Dispatcher, DispatcherSettings
    from errand.engine.worker import Worker, WorkerSettings

    clock = SystemClock()
    agents = AgentRegistry.from_config(cfg)  # ConfigErrors first, before the database is touched
    delivery = DispatcherSettings.from_config(cfg) if cfg.webhook_signing_secret else None
    if delivery is None:
        show.note("webhooks disabled: no async.webhook_secret and no admin key to sign them")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store: Store | None = None
    try:
        store = await _open_when_reachable(cfg, clock, migrate=migrate, stop=stop)
        if store is None:  # stopped while waiting for the database
            return
        worker = Worker(store, agents, WorkerSettings.from_config(cfg), clock=clock)
        async with AsyncExitStack() as stack, asyncio.TaskGroup() as tasks:
            tasks.create_task(worker.run(stop), name="errand-worker")
            if delivery is not None:
                dispatcher = await stack.enter_async_context(Dispatcher(store, delivery, clock=clock))
                tasks.create_task(dispatcher.run(stop), name="errand-dispatcher")
    except ExceptionGroup as group:  # the first failure is the cause; the other loop was cancelled
        raise group.exceptions[0] from None
    finally:
        await agents.aclose()  # model clients' connections, once no attempt runs
        if store is not None:
            await store.close()


async def _open_when_reachable(
    cfg: Config, clock: Clock, *, migrate: bool, stop: asyncio.Event
) -> Store | None:
    """The worker's store, once its PostgreSQL server answers. A worker started while the
    server is down or restarting (a deploy racing a database failover) waits for it with
    backoff, as running workers do, instead of exiting; None if stopped meanwhile. SQLite
    errors at open are local and permanent (a bad path), so they end the command at once."""
    from errand.store import open_store

    waits = _backoff()
    while True:
        try:
            return await open_store(cfg.storage_url, migrate=migrate, **_store_options(cfg, clock))
        except StoreUnavailable as exc:
            if cfg.storage_url.startswith("sqlite:"):
                raise
            delay = next(waits)
            show.note(f"database unavailable ({exc.message}); retrying in {delay:.1f}s")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
            return None


def _run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, as `errand serve` does through uvicorn: a worker
    mostly talks to its database, and uvloop's socket I/O costs less CPU per round trip than
    the default loop's (the worker profile was dominated by selector transport writes)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        asyncio.run(main)
        return
    uvloop.run(main)


def _backoff(first: float = 0.1, most: float = 5.0) -> Iterator[float]:
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


@app.command()
def worker(config: ConfigOpt = None, no_migrate: NoMigrateOpt = False) -> None:
    """Run workers (and webhook delivery) without HTTP, until SIGINT/SIGTERM; then stop cleanly.
    Any number of worker processes may share one PostgreSQL database."""
    cfg = _config_or_exit(config)
    show.note(f"errand worker · formation {cfg.name} · {show.mask_url(cfg.storage_url)}")
    with _reporting():  # a handler that cannot be imported is a ConfigError: exit 2
        _run_on_uvloop(_run_workers(cfg, migrate=not no_migrate))
    show.note("workers stopped")


async def _migrate(cfg: Config) -> list[str]:
    from errand.store import open_store

    store = await open_store(cfg.storage_url, migrate=False, **_store_options(cfg, SystemClock()))
    try:
        return await store.migrate()
    finally:
        await store.close()


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Apply pending database migrations and print their names."""
    cfg = _config_or_exit(config)
    with _reporting():
        applied = asyncio.run(_migrate(cfg))
    for name in applied:
        show.out.print(name)
    if not applied:
        show.note("schema already current")


@app.command()
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


# -- client side ------------------------------------------------------------------------------


def _client(url: str, key: str | None, admin_key: str | None, user: str | None) -> Client:
    return Client(url, client_key=key, admin_key=admin_key, user_id=user)


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
    if not st.is_success:
        raise typer.Exit(1)


@app.command()
def chat(
    message: Annotated[str, typer.Argument(help="The message for the agent.")],
    use_async: Annotated[bool, typer.Option("--async", help="Queue it and return the request id.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --async: wait, showing progress.")] = False,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent id (default: the formation's).")] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST the result to this URL.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session id.")] = None,
    timeout: TimeoutOpt = 600.0,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    admin_key: AdminOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a chat message: sync by default (waits with a progress bar if the server goes async)."""
    options: dict[str, Any] = {"agent_id": agent, "webhook_url": webhook, "session_id": session}
    with _reporting(), _client(url, key, admin_key, user) as c:
        if use_async:
            handle = c.chat_async(message, **options)
            if not wait:
                show.print_handle(handle, as_json=as_json)
                return
            st = _wait(c, handle.id, timeout, as_json)
        else:
            st = c.chat(message, **options)
            if not st.is_complete:
                if not as_json:
                    show.note(f"{st.id} outlived the sync wait and goes on in the background; waiting")
                st = _wait(c, st.id, timeout, as_json)
    _finish(st, as_json)


@app.command()
def status(
    request_id: Annotated[str, typer.Argument(help="Request id (req_...).")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    admin_key: AdminOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a request's status, progress and result."""
    with _reporting(), _client(url, key, admin_key, user) as c:
        show.print_status(c.get_request(request_id), as_json=as_json)


@app.command("wait")
def wait_command(
    request_id: Annotated[str, typer.Argument(help="Request id (req_...).")],
    timeout: TimeoutOpt = 600.0,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    admin_key: AdminOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait for a request to end (progress bar), then print its result."""
    with _reporting(), _client(url, key, admin_key, user) as c:
        st = _wait(c, request_id, timeout, as_json)
    _finish(st, as_json)


@app.command()
def cancel(
    request_id: Annotated[str, typer.Argument(help="Request id (req_...).")],
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    admin_key: AdminOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a pending or running request."""
    with _reporting(), _client(url, key, admin_key, user) as c:
        show.print_cancel(c.cancel(request_id), as_json=as_json)


@app.command()
def requests(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page (from a previous list).")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    admin_key: AdminOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List your requests, newest first."""
    with _reporting(), _client(url, key, admin_key, user) as c:
        show.print_requests(c.list_requests(status=status, limit=limit, cursor=cursor), as_json=as_json)


def _parse_data(text: str) -> Any:
    """--data: inline JSON, or @file with JSON in it."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        return json.loads(raw)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"expected JSON or @file.json ({exc})", param_hint="--data") from None


@app.command()
def trigger(
    name: Annotated[str, typer.Argument(help="Trigger name (triggers/NAME.md on the server).")],
    data: Annotated[str, typer.Option("--data", help="Event data: JSON, or @file.json.")] = "{}",
    sync: Annotated[
        bool | None, typer.Option("--sync/--async", help="Default: the trigger's own setting, else async.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="If queued: wait, showing progress.")] = False,
    timeout: TimeoutOpt = 600.0,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    admin_key: AdminOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire a trigger with event data."""
    payload = _parse_data(data)
    with _reporting(), _client(url, key, admin_key, user) as c:
        fired = c.fire_trigger(name, payload, use_async=None if sync is None else not sync)
        if isinstance(fired, RequestHandle):
            if not wait:
                show.print_handle(fired, as_json=as_json)
                return
            fired = _wait(c, fired.id, timeout, as_json)
    _finish(fired, as_json)
