"""PostgreSQL for tests: one migrated database per test session, emptied before each test.

The server comes from ERRAND_TEST_POSTGRES_DSN (default postgresql://postgres@127.0.0.1:5432/test);
its database is only used to CREATE and DROP ours, named `errand_test_<random>`, so parallel
sessions never meet. Emptying with DELETE costs well under a millisecond, where a fresh database
per test (CREATE ... TEMPLATE, then DROP, which checkpoints) costs most of a second.
Unreachable server: tests are skipped with the reason, or fail when ERRAND_REQUIRE_POSTGRES=1.

tests/conftest.py registers this module as a pytest plugin, so every test can ask for:
  pg_server      (session) the admin DSN, probed
  pg_database    (session) URL of the migrated database of this session
  pg_url         URL of that database, emptied for this test
  pg_fresh_url   URL of a brand-new, NOT migrated database (dropped at session end)
  pg_stores      async factory `await pg_stores(**options)` -> PostgresStore on pg_url with the
                 test's clock; every store it opened is closed after the test
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from errand.clock import ManualClock
from errand.store.postgres import PostgresStore

__all__ = [
    "StoreFactory",
    "_pg_databases",
    "admin",
    "pg_database",
    "pg_fresh_url",
    "pg_server",
    "pg_stores",
    "pg_url",
    "with_database",
]

T = TypeVar("T")
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
TABLES = (
    "schedules",
    "delivery_attempts",
    "deliveries",
    "events",
    "idempotency",
    "requests",
    "settings",
    "workers",
    "fair_keys",
    "console_sessions",
    "agent_minutes",
)  # children first
StoreFactory = Callable[..., Awaitable[PostgresStore]]


def admin_dsn() -> str:
    return os.environ.get("ERRAND_TEST_POSTGRES_DSN") or DEFAULT_DSN


def with_database(dsn: str, name: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in a private thread, for session-scoped
    fixtures: the test's own event loop is never touched."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="pg-fixture")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


async def admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _create_migrated(dsn: str, name: str) -> None:
    await admin(dsn, f'CREATE DATABASE "{name}"')
    store = await PostgresStore.open(with_database(dsn, name), migrate=True)
    await store.close()


class _Databases:
    """The databases this session created; all dropped when it ends."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.prefix = f"errand_test_{secrets.token_hex(4)}"
        self.names: list[str] = []
        self._count = 0

    def new_name(self) -> str:
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        self.names.append(name)
        return name

    def drop_all(self) -> None:
        statements = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.names]
        if statements:
            run_sync(admin(self.dsn, *statements))


@pytest.fixture(scope="session")
def pg_server() -> str:
    dsn = admin_dsn()
    try:
        run_sync(admin(dsn, "SELECT 1"))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {redact(dsn)}: {exc}"
        if os.environ.get("ERRAND_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return dsn


@pytest.fixture(scope="session")
def _pg_databases(pg_server: str) -> Iterator[_Databases]:
    databases = _Databases(pg_server)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_database(pg_server: str, _pg_databases: _Databases) -> str:
    name = _pg_databases.new_name()
    run_sync(_create_migrated(pg_server, name))
    return with_database(pg_server, name)


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    await admin(pg_database, *(f"DELETE FROM {table}" for table in TABLES))
    return pg_database


@pytest.fixture
def pg_fresh_url(pg_server: str, _pg_databases: _Databases) -> str:
    name = _pg_databases.new_name()
    run_sync(admin(pg_server, f'CREATE DATABASE "{name}"'))
    return with_database(pg_server, name)


@pytest.fixture
async def pg_stores(pg_url: str, clock: ManualClock) -> AsyncIterator[StoreFactory]:
    opened: list[PostgresStore] = []

    async def factory(**options: Any) -> PostgresStore:
        store = await PostgresStore.open(pg_url, clock=clock, **options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()
