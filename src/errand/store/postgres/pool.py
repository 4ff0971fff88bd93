"""PostgreSQL connections for the store: the pool and the one driver-error mapping.

`Database.run(fn)` is the only way the store reaches PostgreSQL: it borrows a pooled connection,
wraps fn in a transaction when asked, retries deadlocks, retries a *read* once when its
connection died (a fresh one usually works: PostgreSQL restarted, or a backend was killed), and
turns every driver exception into an `errors` type with `translate()`. Writes are never retried
after a lost connection, since whether they committed is unknown: they raise StoreUnavailable.

No error message carries an argument: asyncpg's text for a value it could not encode holds the
value's repr, which can be anyone's data, huge, or (nested deep) raise RecursionError itself.
JSON values are therefore encoded before the statement (`jsonb()`), so a value that cannot be
stored fails its own call with InvalidRequest and never reaches the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import asyncpg
import orjson

from errand.errors import ConfigError, Conflict, ErrandError, InvalidRequest, StoreUnavailable
from errand.store.rules import unstorable

log = logging.getLogger(__name__)

T = TypeVar("T")
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
"""No store call waits longer than this on a silent server (e.g. a half-open socket)."""
TX_ATTEMPTS = 3
"""Deadlocks and serialization failures are tried this many times in all."""

_RETRY_TX = asyncpg.exceptions.TransactionRollbackError  # class 40: deadlock, serialization failure
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""What talking to PostgreSQL can raise. Anything else is a bug of ours and is not disguised.
(InternalClientError: e.g. a connection the server killed while idle, handed out before its
socket's end was seen.)"""
_STATEMENT_ERRORS = asyncpg.PostgresError
_CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)


def _breaks_connection(exc: BaseException) -> bool:
    """After this error, is the connection unfit for the next caller? A statement-level error
    from the server leaves it fine; a lost, killed, timed-out or cancelled one does not."""
    return not isinstance(exc, _STATEMENT_ERRORS) or isinstance(exc, _CONNECTION_ERRORS)


def translate(exc: BaseException) -> ErrandError:
    """The one mapping of driver errors. Constraint violations are conflicts; a value PostgreSQL
    refuses (e.g. a NUL character in text) is bad input; everything else means the database
    cannot serve us right now (down, restarting, connection lost, schema not migrated)."""
    if isinstance(exc, ErrandError):
        return exc
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return Conflict(f"conflicting write ({_reason(exc)})")
    if isinstance(exc, asyncpg.DataError):
        return InvalidRequest(f"the database refused a value ({_reason(exc)})")
    return StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}")


def _reason(exc: BaseException) -> str:
    """What a refusal may say: its class and SQLSTATE, never the text (it can quote a value)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}, SQLSTATE {sqlstate}" if sqlstate else type(exc).__name__


class Row(Protocol):
    """An asyncpg Record: read by column name, or by position (as `store.rules` reads rows)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class Conn(Protocol):
    """The part of asyncpg.Connection the store uses (asyncpg ships no type stubs)."""

    async def fetch(self, query: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, query: str, *args: Any) -> Row | None: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...

    async def execute(self, query: str, *args: Any) -> str: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...


class Jsonb:
    """A JSON value already encoded (see `jsonb()`); its repr shows no data."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<jsonb {len(self.data)} bytes>"


_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""`\\u0000` in JSON text, not preceded by an escaping backslash: jsonb refuses it."""


def jsonb(value: Any) -> Jsonb:
    """Encode a JSON value for a jsonb parameter now: InvalidRequest (of this call only) when it
    cannot be stored -- nesting past the encoder's limit, a lone surrogate, a NUL character."""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise unstorable(exc) from None
    if _JSON_NUL.search(data):
        raise InvalidRequest("value cannot be stored: PostgreSQL refuses NUL characters in JSON")
    return Jsonb(data)


def _encode_json(value: Any) -> bytes:
    data = value.data if isinstance(value, Jsonb) else orjson.dumps(value)
    return b"\x01" + data  # jsonb binary format: a version byte, then the text


def _decode_json(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_encode_json, decoder=_decode_json, schema="pg_catalog", format="binary"
    )


async def connect(dsn: str, application: str) -> Any:
    """A single connection outside the pool (the LISTEN connection)."""
    return await asyncpg.connect(
        dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": application}
    )


def _discard(conn: Any) -> None:
    """Close a broken pooled connection, so the pool opens a fresh one for the next caller. A
    connection the server already closed was detached from its proxy by asyncpg (it is back
    in the pool as "closed" and will be reopened): terminate() then raises InterfaceError,
    which must not replace the error that broke it."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


class Database:
    """The connection pool of one store."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.closed = False

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int) -> Database:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max(1, pool_size),
                init=_init_connection,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                server_settings={"application_name": "errand"},
            )
        except (asyncpg.ClientConfigurationError, ValueError) as exc:  # a malformed URL
            raise ConfigError(f"storage.url: {exc}") from exc
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        return cls(pool)

    async def run(self, fn: Callable[[Conn], Awaitable[T]], *, tx: bool = True, read: bool = False) -> T:
        """fn(conn) on a pooled connection, inside a transaction unless tx=False (one statement is
        its own transaction). `read`: fn writes nothing, so it may run again on a new connection."""
        attempt = 0
        while True:
            attempt += 1
            if self.closed:
                raise StoreUnavailable("the store is closed")
            try:
                async with self._pool.acquire() as conn:
                    try:
                        if not tx:
                            return await fn(conn)
                        async with conn.transaction():
                            return await fn(conn)
                    except BaseException as exc:
                        if _breaks_connection(exc) and not isinstance(exc, ErrandError):
                            _discard(conn)
                        raise
            except _RETRY_TX as exc:
                if attempt >= TX_ATTEMPTS:
                    raise StoreUnavailable(f"postgres: {exc}") from exc
            except DRIVER_ERRORS as exc:
                error = translate(exc)
                if not (read and attempt == 1 and isinstance(error, StoreUnavailable)):
                    raise error from exc
                log.info("postgres store: a read lost its connection (%s); trying a new one", exc)

    async def fetch(self, query: str, *args: Any, read: bool = False) -> list[Row]:
        return await self.run(lambda c: c.fetch(query, *args), tx=False, read=read)

    async def fetchrow(self, query: str, *args: Any, read: bool = False) -> Row | None:
        return await self.run(lambda c: c.fetchrow(query, *args), tx=False, read=read)

    async def close(self) -> None:
        """Wait (bounded) for borrowed connections to come back, then close them all."""
        if self.closed:
            return
        self.closed = True
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await self._pool.close()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._pool.terminate()


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a store's background connection task (the listener, the worker locks) and wait
    until it has ended; None: nothing runs."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
