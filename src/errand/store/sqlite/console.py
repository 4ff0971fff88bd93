"""The console's store methods on SQLite: sign-in sessions (and, later, the dashboard reads).

A mixin of SqliteStore, so store.py stays the face of the request flow: sessions are written
through the one writer (durable before the sign-in answers) and read on the reader pool.
"""

from __future__ import annotations

import sqlite3

from errand.clock import Clock
from errand.console_models import ConsoleSession
from errand.store import console_sql as q
from errand.store.sqlite.connections import Readers, Writer


class SqliteConsole:
    """Sessions shared by every process on the file: any of them accepts, any of them revokes."""

    _writer: Writer
    _readers: Readers
    _clock: Clock

    async def create_session(self, session: ConsoleSession) -> None:
        values = q.session_values(session)
        await self._writer.submit(lambda c: _insert(c, values))

    async def get_session(self, id_hash: str) -> ConsoleSession | None:
        now = self._clock.now()
        return await self._readers.run(lambda c: _get(c, id_hash, now))

    async def delete_session(self, id_hash: str) -> bool:
        return await self._writer.submit(
            lambda c: c.execute(q.SQLITE_DELETE_SESSION, (id_hash,)).rowcount > 0
        )

    async def purge_console(self) -> int:
        now = self._clock.now()
        return await self._writer.submit(
            lambda c: c.execute(q.SQLITE_PURGE_SESSIONS, (now,)).rowcount, relaxed=True
        )


def _insert(conn: sqlite3.Connection, values: tuple[str, str, str, str, float, float]) -> None:
    conn.execute(q.SQLITE_INSERT_SESSION, values)


def _get(conn: sqlite3.Connection, id_hash: str, now: float) -> ConsoleSession | None:
    return q.to_session(conn.execute(q.SQLITE_GET_SESSION, (id_hash, now)).fetchone())
