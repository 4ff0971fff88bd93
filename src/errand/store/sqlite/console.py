"""The console's store methods on SQLite: sign-in sessions and the dashboard's reads.

A mixin of SqliteStore, so store.py stays the face of the request flow: sessions are written
through the one writer (durable before the sign-in answers), the overview is read on the reader
pool in one snapshot, and the count rows it summed are folded on the writer when they grew.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from errand.clock import Clock
from errand.console_models import ConsoleSession, CountRow, DeliveryPage, Match, Overview
from errand.models import Delivery, Status
from errand.store import console_sql as q
from errand.store import rules
from errand.store.queue import FOLD_AT
from errand.store.rollup import window_start
from errand.store.sqlite.connections import Readers, Writer
from errand.store.sqlite.rows import loads


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
        return await self._writer.submit(lambda c: _purge(c, now), relaxed=True)

    async def console_counts(self) -> tuple[CountRow, ...]:
        counts, changes = await self._readers.run(lambda c: q.to_counts(c.execute(q.COUNTS).fetchall()))
        if changes > FOLD_AT:
            await self._writer.submit(_fold, relaxed=True)
        return counts

    async def overview(self, window: float = 3600.0) -> Overview:
        now = self._clock.now()
        found = await self._readers.run(lambda c: _overview(c, now, window), snapshot=True)
        if found[1] > FOLD_AT:
            await self._writer.submit(_fold, relaxed=True)
        return found[0]

    async def list_all_deliveries(self, state: str | None, limit: int, cursor: str | None) -> DeliveryPage:
        text, params = q.deliveries_query(state, limit, cursor, _mark)
        found = await self._readers.run(lambda c: _deliveries(c, text, params), snapshot=True)
        return q.delivery_page(found, limit)

    async def queued_matching(
        self, status: Status | None, user_id: str | None, match: Match, limit: int
    ) -> tuple[int, list[str]]:
        where, params = q.queued_query(status, user_id, match, _mark)
        return await self._readers.run(lambda c: _matching(c, where, params, limit), snapshot=True)

    async def failed_deliveries_matching(self, limit: int) -> tuple[int, list[str]]:
        return await self._readers.run(lambda c: _failed(c, limit), snapshot=True)


def _mark(_n: int, _type: str) -> str:
    return "?"


def _deliveries(conn: sqlite3.Connection, text: str, params: list[Any]) -> list[Delivery]:
    rows = conn.execute(text, params).fetchall()
    out = []
    for row in rows:
        attempts = conn.execute(q.SQLITE_ATTEMPTS_OF, (row[0],)).fetchall()
        out.append(rules.to_delivery(row, [rules.to_attempt(a) for a in attempts]))
    return out


def _matching(conn: sqlite3.Connection, where: str, params: list[Any], limit: int) -> tuple[int, list[str]]:
    count = conn.execute(f"SELECT COUNT(*) FROM requests WHERE {where}", params).fetchone()[0]
    ids = conn.execute(
        f"SELECT id FROM requests WHERE {where} ORDER BY created_at, id LIMIT ?", (*params, limit)
    ).fetchall()
    return int(count), [str(r[0]) for r in ids]


def _failed(conn: sqlite3.Connection, limit: int) -> tuple[int, list[str]]:
    count = conn.execute(f"SELECT COUNT(DISTINCT d.request_id) {q.LATEST_FAILED}").fetchone()[0]
    ids = conn.execute(
        f"SELECT DISTINCT d.request_id, d.created_at {q.LATEST_FAILED} ORDER BY d.created_at LIMIT ?",
        (limit,),
    ).fetchall()
    return int(count), [str(r[0]) for r in ids]


def _insert(conn: sqlite3.Connection, values: tuple[str, str, str, str, float, float]) -> None:
    conn.execute(q.SQLITE_INSERT_SESSION, values)


def _get(conn: sqlite3.Connection, id_hash: str, now: float) -> ConsoleSession | None:
    return q.to_session(conn.execute(q.SQLITE_GET_SESSION, (id_hash, now)).fetchone())


def _delete(conn: sqlite3.Connection, id_hash: str) -> bool:
    return conn.execute(q.SQLITE_DELETE_SESSION, (id_hash,)).rowcount > 0


def _purge(conn: sqlite3.Connection, now: float) -> int:
    dropped = conn.execute(q.SQLITE_PURGE_SESSIONS, (now,)).rowcount
    return dropped + conn.execute(q.SQLITE_PURGE_MINUTES, (int(now) - q.MINUTES_KEPT_S,)).rowcount


def _fold(conn: sqlite3.Connection) -> None:
    """Fold request_counts into one row per group (on the one writer: nothing interleaves)."""
    last = conn.execute("SELECT MAX(id) FROM request_counts").fetchone()[0]
    if last is not None:
        for statement in q.SQLITE_FOLD_COUNTS:
            conn.execute(statement, {"last": last})


def _overview(conn: sqlite3.Connection, now: float, window: float) -> tuple[Overview, int]:
    counts, changes = q.to_counts(conn.execute(q.COUNTS).fetchall())
    overview = Overview(
        generated_at=now,
        counts=counts,
        oldest_pending_at=conn.execute(q.OLDEST).fetchone()[0],
        running=q.to_running(conn.execute(q.RUNNING).fetchall(), loads),
        minutes=q.to_minutes(conn.execute(q.SQLITE_MINUTES, (window_start(now, window),)).fetchall()),
        deliveries=q.to_health(conn.execute(q.SQLITE_DELIVERY_HEALTH, (now - window,)).fetchone()),
        workers=q.to_workers(conn.execute(q.WORKERS).fetchall(), conn.execute(q.BY_WORKER).fetchall()),
    )
    return overview, changes
