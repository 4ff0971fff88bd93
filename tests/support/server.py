"""The in-process server for tests: an ASGI app under uvicorn on 127.0.0.1:0, in a thread.

`ServerThread` is the one way tests serve an app over real loopback HTTP (the API tests, the
SDK tests, the fake OpenAI server). Around it, the errand server of the API tests: SQLite in
tmp_path, the test formation below. `make_server(**sections)` starts a server whose formation is
that formation with the given top-level sections merged in (e.g.
`make_server(**{"async": {"threshold_seconds": 0}})`); `server` is the default one;
`make_server_each_backend` is `make_server` once on SQLite and once on a fresh PostgreSQL
database. The fixtures are registered for every test by tests/conftest.py. Tests talk to it
with httpx.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
import uvloop
from starlette.types import ASGIApp

from errand.api.app import create_app
from errand.config import Config, build_config
from errand.delivery.secret import signing_secret
from errand.store.base import Store

T = TypeVar("T")

CLIENT_KEY = "client-key-aaaaaaaa"
OTHER_KEY = "client-key-bbbbbbbb"
ADMIN_KEY = "admin-key-cccccccc"
VIEWER_KEY = "viewer-key-dddddddd"
ROLE_KEYS = {"client": [CLIENT_KEY, OTHER_KEY], "admin": [ADMIN_KEY], "viewer": [VIEWER_KEY]}
"""A `keys` section with every role (the console's tests: what a viewer may read and not change)."""
FORMATION = "testform"
REPO = Path(__file__).resolve().parents[2]


def formation(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": FORMATION,
        "keys": {"client": [CLIENT_KEY, OTHER_KEY], "admin": [ADMIN_KEY]},
        "storage": {"url": f"sqlite:///{tmp_path / 'errand.db'}", "sqlite_synchronous": "normal"},
        "async": {"mode": "auto", "threshold_seconds": 30, "webhook_allow_hosts": ["127.0.0.1"]},
        "workflow": {"task_timeout": 30, "retry": {"max_attempts": 1}},
        "workers": {"concurrency": 8, "lease_seconds": 5, "poll_interval": 0.2},
        "agents": [
            {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
            {"id": "slow", "handler": "tests.support.agents:slow_steps"},
            {"id": "fail", "handler": "tests.support.agents:fail"},
        ],
    }
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value} if isinstance(value, dict) else value
    return base


@dataclass
class Server:
    """A running server: its URL, its config, and httpx clients bound to its keys."""

    base: str
    config: Config
    loop: asyncio.AbstractEventLoop
    app_state: Any
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(
        self, key: str | None = CLIENT_KEY, user: str | None = None, *, admin: bool = False
    ) -> httpx.Client:
        headers = {}
        if key is not None:
            headers["X-Muxi-Admin-Key" if admin else "X-Muxi-Client-Key"] = key
        if user is not None:
            headers["X-Muxi-User-Id"] = user
        c = httpx.Client(base_url=self.base, headers=headers, timeout=30)
        self._clients.append(c)
        return c

    def admin(self, user: str | None = None) -> httpx.Client:
        return self.client(ADMIN_KEY, user, admin=True)

    @property
    def store(self) -> Store:
        store: Store = self.app_state.store
        return store

    @property
    def webhook_secret(self) -> str:
        """What this server signs webhooks with (async.webhook_secret, else its database's)."""
        return self.run(signing_secret(self.config, self.store))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server's event loop (e.g. a store call) and wait for it."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close_clients(self) -> None:
        for c in self._clients:
            c.close()


class ServerThread:
    """An ASGI app under uvicorn on a free loopback port, in a daemon thread with its own uvloop
    event loop (uvicorn installs no signal handlers off the main thread)."""

    def __init__(
        self, app: ASGIApp, name: str = "uvicorn-test", forwarded_allow_ips: str | None = None
    ) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                http="httptools",
                ws="none",
                lifespan="on",
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=5,
                forwarded_allow_ips=forwarded_allow_ips,
            )
        )
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            self.loop.close()

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server {self.thread.name} did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        if self.thread.is_alive():
            raise RuntimeError(f"the test server {self.thread.name} did not stop")


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    running: list[tuple[ServerThread, Server]] = []

    def start(*, with_workers: bool = True, **sections: Any) -> Server:
        config = build_config(formation(tmp_path, **sections), env={}, base_dir=str(REPO))
        app = create_app(config, with_workers=with_workers)
        thread = ServerThread(app, forwarded_allow_ips=",".join(config.server.forwarded_allow_ips)).start()
        srv = Server(thread.url, config, thread.loop, app.state)
        running.append((thread, srv))
        return srv

    yield start
    for thread, srv in reversed(running):
        srv.close_clients()
        thread.stop()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_server_each_backend(
    request: pytest.FixtureRequest, make_server: Callable[..., Server]
) -> Callable[..., Server]:
    """`make_server` on each backend in turn: the SQLite file in tmp_path, then a fresh
    PostgreSQL database (its own for the test; the tests marked `postgres`)."""
    if request.param == "sqlite":
        return make_server
    url: str = request.getfixturevalue("pg_fresh_url")
    return functools.partial(make_server, storage={"url": url})


def wait_for(client: httpx.Client, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The request's document once terminal (long-polls; fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/requests/{request_id}", params={"wait": min(5.0, timeout)})
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        if doc["status"] in ("completed", "failed", "cancelled"):
            return doc
        assert time.monotonic() < deadline, f"{request_id} still {doc['status']}"


def until(check: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll `check` (a test-side observation, e.g. a marker file) until it returns a value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)
