"""The console's store methods on PostgreSQL: sign-in sessions and the dashboard's reads.

A mixin of PostgresStore, so store.py stays the face of the request flow. Session writes are one
implicit transaction each; the overview is one round of bounded reads on one connection, and
the count rows it summed are folded (one statement) when they grew.
"""

from __future__ import annotations

from typing import Any

from errand.clock import Clock
from errand.console_models import ConsoleSession, CountRow, DeliveryPage, Match, Overview
from errand.models import Delivery, Status
from errand.store import console_sql as q
from errand.store import rules
from errand.store.postgres.pool import Conn, Database
from errand.store.postgres.sql import ATTEMPTS_OF, mark
from errand.store.queue import FOLD_AT
from errand.store.rollup import window_start


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
        sessions = await self._database.run(lambda c: c.execute(q.PG_PURGE_SESSIONS, now), tx=False)
        minutes = await self._database.run(
            lambda c: c.execute(q.PG_PURGE_MINUTES, int(now) - q.MINUTES_KEPT_S), tx=False
        )
        return _count(sessions) + _count(minutes)

    async def console_counts(self) -> tuple[CountRow, ...]:
        counts, changes = q.to_counts(await self._database.fetch(q.COUNTS, read=True))
        if changes > FOLD_AT:
            await self._database.run(lambda c: c.execute(q.PG_FOLD_COUNTS), tx=False)
        return counts

    async def overview(self, window: float = 3600.0) -> Overview:
        now = self._clock.now()
        overview, changes = await self._database.run(lambda c: _overview(c, now, window), read=True)
        if changes > FOLD_AT:
            await self._database.run(lambda c: c.execute(q.PG_FOLD_COUNTS), tx=False)
        return overview

    async def list_all_deliveries(self, state: str | None, limit: int, cursor: str | None) -> DeliveryPage:
        text, params = q.deliveries_query(state, limit, cursor, mark)
        found = await self._database.run(lambda c: _deliveries(c, text, params), read=True)
        return q.delivery_page(found, limit)

    async def queued_matching(
        self, status: Status | None, user_id: str | None, match: Match, limit: int
    ) -> tuple[int, list[str]]:
        where, params = q.queued_query(status, user_id, match, mark)
        return await self._database.run(lambda c: _matching(c, where, params, limit), read=True)

    async def failed_deliveries_matching(self, limit: int) -> tuple[int, list[str]]:
        return await self._database.run(lambda c: _failed(c, limit), read=True)


async def _deliveries(conn: Conn, text: str, params: list[Any]) -> list[Delivery]:
    rows = await conn.fetch(text, *params)
    if not rows:
        return []
    attempts = await conn.fetch(ATTEMPTS_OF, [row["id"] for row in rows])
    by_delivery: dict[str, list[Any]] = {}
    for a in attempts:
        by_delivery.setdefault(a["delivery_id"], []).append(rules.to_attempt(a))
    return [rules.to_delivery(row, by_delivery.get(row["id"], [])) for row in rows]


async def _matching(conn: Conn, where: str, params: list[Any], limit: int) -> tuple[int, list[str]]:
    count = await conn.fetchval(f"SELECT COUNT(*) FROM requests WHERE {where}", *params)
    n = len(params) + 1
    ids = await conn.fetch(
        f"SELECT id FROM requests WHERE {where} ORDER BY created_at, id LIMIT ${n}::int", *params, limit
    )
    return int(count), [str(r["id"]) for r in ids]


async def _failed(conn: Conn, limit: int) -> tuple[int, list[str]]:
    count = await conn.fetchval(f"SELECT COUNT(*) {q.LATEST_FAILED}")
    query = f"SELECT d.request_id {q.LATEST_FAILED} ORDER BY d.created_at, d.id LIMIT $1::int"
    ids = await conn.fetch(query, limit)
    return int(count), [str(r["request_id"]) for r in ids]


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _overview(conn: Conn, now: float, window: float) -> tuple[Overview, int]:
    counts, changes = q.to_counts(await conn.fetch(q.COUNTS))
    health = await conn.fetchrow(q.PG_DELIVERY_HEALTH, now - window)
    assert health is not None
    overview = Overview(
        generated_at=now,
        counts=counts,
        oldest_pending_at=await conn.fetchval(q.OLDEST),
        running=q.to_running(await conn.fetch(q.RUNNING), lambda v: v),
        minutes=q.to_minutes(await conn.fetch(q.PG_MINUTES, window_start(now, window))),
        deliveries=q.to_health(health),
        workers=q.to_workers(await conn.fetch(q.WORKERS), await conn.fetch(q.BY_WORKER)),
    )
    return overview, changes
