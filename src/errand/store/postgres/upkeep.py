"""Housekeeping of the PostgreSQL backend: migrations, settings, the write probe and the purge."""

from __future__ import annotations

import asyncio
import functools
import time

from errand.clock import Clock
from errand.store import purge_rules, rules
from errand.store.postgres import sql
from errand.store.postgres.pool import Conn, Database


async def migrate(conn: Conn) -> list[str]:
    """Apply what schema_migrations lacks, under a transaction-scoped advisory lock: processes
    migrating at once serialize, and the later ones find nothing to do."""
    await conn.execute(sql.LOCK_MIGRATIONS, sql.MIGRATION_LOCK)
    await conn.execute(sql.MIGRATIONS_TABLE)
    applied = {row["name"] for row in await conn.fetch(sql.APPLIED)}
    done = []
    for name, script in sql.migrations():
        if name not in applied:
            await conn.execute(script)
            await conn.execute(sql.RECORD_MIGRATION, name)
            done.append(name)
    return done


async def applied_migrations(conn: Conn) -> set[str]:
    if not await conn.fetchval(sql.HAS_MIGRATIONS_TABLE):
        return set()
    return {row["name"] for row in await conn.fetch(sql.APPLIED)}


async def get_or_create_setting(conn: Conn, name: str, value: str, now: float) -> str:
    """Insert if absent, then read (see sql.INSERT_SETTING): every caller gets the one winner."""
    await conn.execute(sql.INSERT_SETTING, name, value, now)
    return str(await conn.fetchval(sql.SETTING, name))


async def probe_write(conn: Conn, now: float) -> None:
    """The probe row, rewritten in a transaction that waits at most PROBE_LOCK_WAIT for locks."""
    await conn.execute(sql.PROBE_LOCK_TIMEOUT)
    await conn.execute(sql.PROBE_WRITE, now)


async def purge(db: Database, clock: Clock, result_ttl: float, tombstone_ttl: float) -> int:
    """Purge chunk after chunk until one leaves nothing for another, resting between chunks
    (purge_rules.purge_rest); returns the rows touched."""
    total = 0
    while True:
        now, started = clock.now(), time.monotonic()
        chunk = functools.partial(purge_chunk, now=now, result_ttl=result_ttl, tombstone_ttl=tombstone_ttl)
        tombstoned, dropped, keys = await db.run(chunk)
        total += tombstoned + dropped
        if purge_rules.purge_finished(tombstoned, dropped, keys):
            return total
        await asyncio.sleep(purge_rules.purge_rest(time.monotonic() - started))


async def purge_chunk(
    conn: Conn, *, now: float, result_ttl: float, tombstone_ttl: float
) -> tuple[int, int, int]:
    """Tombstone and drop up to PURGE_CHUNK requests each, and as many old keys (so no
    transaction is long)."""
    chunk = purge_rules.PURGE_CHUNK
    tombstoned = await conn.fetch(sql.TOMBSTONE, rules.result_cutoff(now, result_ttl), now, chunk)
    dropped = await conn.fetch(sql.DROP_TOMBSTONES, now - tombstone_ttl, chunk)
    keys = await conn.fetch(sql.DROP_OLD_KEYS, rules.key_cutoff(now), chunk)
    return len(tombstoned), len(dropped), len(keys)


async def forget(conn: Conn, request_id: str, now: float, cutoff: float | None) -> None:
    """Store.forget: the row locked, checked live and finished, then tombstoned."""
    row = await conn.fetchrow(sql.LOCK_REQUEST, request_id)
    rules.forgettable(rules.live(request_id, None if row is None else rules.to_request(row), cutoff))
    await conn.execute(sql.FORGET, request_id, now)


async def schema_current(db: Database) -> bool:
    """True when every packaged migration is recorded as applied."""
    applied = await db.run(applied_migrations, tx=False, read=True)
    return {name for name, _ in sql.migrations()} <= applied
