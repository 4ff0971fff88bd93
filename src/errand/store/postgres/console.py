"""The console's store methods on PostgreSQL: sign-in sessions (and, later, the dashboard reads).

A mixin of PostgresStore, so store.py stays the face of the request flow. Every statement is
one implicit transaction on the pool.
"""

from __future__ import annotations

from errand.clock import Clock
from errand.console_models import ConsoleSession
from errand.store import console_sql as q
from errand.store.postgres.pool import Database


class PostgresConsole:
    """Sessions shared by every process on the database: any of them accepts, any revokes."""

    _clock: Clock

    @property
    def _database(self) -> Database:
        raise NotImplementedError  # PostgresStore's own property

    async def create_session(self, session: ConsoleSession) -> None:
        await self._database.run(
            lambda c: c.execute(q.PG_INSERT_SESSION, *q.session_values(session)), tx=False
        )

    async def get_session(self, id_hash: str) -> ConsoleSession | None:
        now = self._clock.now()
        return q.to_session(await self._database.fetchrow(q.PG_GET_SESSION, id_hash, now, read=True))

    async def delete_session(self, id_hash: str) -> bool:
        status = await self._database.run(lambda c: c.execute(q.PG_DELETE_SESSION, id_hash), tx=False)
        return status != "DELETE 0"

    async def purge_console(self) -> int:
        now = self._clock.now()
        status = await self._database.run(lambda c: c.execute(q.PG_PURGE_SESSIONS, now), tx=False)
        return int(status.rsplit(" ", 1)[-1])
