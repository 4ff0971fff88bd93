"""The backlog benches' databases, what they submit, and a backlog bulk-loaded to look like the
store's own rows, fast, on SQLite or PostgreSQL.

Submitting a million rows through the store takes 15-30 minutes on the shared machine, and the
load drifts meanwhile. Instead the store itself writes one template of each kind (a pending
request with its `created` event and idempotency key; a completed one, claimed and finished,
with its events and attempt row), and SQL clones them: every column copied from the template
(so whatever submit, claim and finish write, the clones have), but the id (random, as
`new_request_id` makes them), the user and fairness key, and every time column shifted so the
rows spread over the last `SPAN_S` seconds. Half of the clones (odd numbers) get an
idempotency key, as the `submit` mode sends them. The count triggers fire for every clone;
their rows are then folded with the store's own fold statements, and PostgreSQL's tables
vacuumed and analyzed (as autovacuum would; SQLite's are not: the store never runs ANALYZE).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from errand.clock import SystemClock, new_request_id
from errand.models import IdempotencyKey, Limits, NewRequest, Result, Status
from errand.store import open_store
from errand.store.base import Store
from errand.store.console_sql import PG_FOLD_COUNTS, SQLITE_FOLD_COUNTS
from errand.store.queue import PG_FOLD, SQLITE_FOLD

PG_ADMIN = os.environ.get("ERRAND_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
DAY = 86400.0


def new(n: int) -> NewRequest:
    return NewRequest(
        id=new_request_id(), owner="bench", user_id=f"u{n % 100}", message="x" * 100, agent="echo"
    )


def key(n: int) -> IdempotencyKey | None:
    return IdempotencyKey(f"k{n}", f"bench:u{n % 100}:/v1/chat", "fp") if n % 2 else None


class Database:
    """A fresh database for one run, and how big it is."""

    def __init__(self, storage: str) -> None:
        self.storage = storage
        self.name = f"errand_backlog_{secrets.token_hex(4)}"
        self.folder = tempfile.mkdtemp(prefix="errand-backlog-")
        self.path = Path(self.folder) / "bench.db"

    @property
    def url(self) -> str:
        if self.storage == "sqlite":
            return f"sqlite:///{self.path}"
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"

    async def create(self) -> None:
        if self.storage == "postgres":
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'CREATE DATABASE "{self.name}"')
            await conn.close()

    async def drop(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.storage == "postgres":
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await conn.close()

    async def size_mb(self) -> float:
        if self.storage == "sqlite":
            files = [self.path, Path(f"{self.path}-wal")]
            return sum(f.stat().st_size for f in files if f.exists()) / 1e6
        conn = await asyncpg.connect(self.url)
        try:
            return float(await conn.fetchval("SELECT pg_database_size(current_database())")) / 1e6
        finally:
            await conn.close()

    async def counts(self) -> dict[str, int]:
        """Rows of `requests` by status."""
        sql = "SELECT status, count(*) FROM requests GROUP BY status ORDER BY status"
        if self.storage == "sqlite":
            conn = sqlite3.connect(self.path)
            try:
                return {str(s): int(n) for s, n in conn.execute(sql)}
            finally:
                conn.close()
        pg = await asyncpg.connect(self.url)
        try:
            return {str(r[0]): int(r[1]) for r in await pg.fetch(sql)}
        finally:
            await pg.close()

    async def pending(self) -> int:
        sql = "SELECT count(*) FROM requests WHERE status IN ('pending', 'processing') AND status = 'pending'"
        if self.storage == "sqlite":
            conn = sqlite3.connect(self.path)
            try:
                return int(conn.execute(sql).fetchone()[0])
            finally:
                conn.close()
        pg = await asyncpg.connect(self.url)
        try:
            return int(await pg.fetchval(sql))
        finally:
            await pg.close()

    async def open(self) -> Store:
        return await open_store(self.url, clock=SystemClock(), synchronous="normal", pool_size=10)


SPAN_S = 3600.0
"""The clones' created_at spread over the hour before the fill."""
BATCH = 100_000
TIMES = {"created_at", "started_at", "completed_at", "run_at", "updated_at", "lease_expires_at", "sort_key"}
TIMES |= {"expired_at", "input_expires_at", "ended_at", "at"}


@dataclass(frozen=True)
class Templates:
    pending: str
    completed: str


async def make_templates(store: Store, agent: str = "echo") -> Templates:
    """One completed and one pending request, written by the store (submit, claim, finish)."""

    def one(user: str) -> NewRequest:
        return NewRequest(id=new_request_id(), owner="bench", user_id=user, message="x" * 100, agent=agent)

    done = one("template-done")
    await store.submit(done, IdempotencyKey("template-done", "bench:template-done:/v1/chat", "fp"))
    claims = await store.claim("w-template", 1, 30.0, Limits())
    assert [c.request.id for c in claims] == [done.id], claims
    await store.finish(done.id, claims[0].attempt, Status.COMPLETED, result=Result("done"))
    pending = one("template-pending")
    await store.submit(pending, IdempotencyKey("template-pending", "bench:template-pending:/v1/chat", "fp"))
    return Templates(pending=pending.id, completed=done.id)


def stash_sql(templates: Templates) -> list[str]:
    """Move the templates out of the store's tables into tmpl_* copies: the clones are made from
    those, and the store never claims or counts a template (its counts move with the DELETEs)."""
    ids = f"'{templates.pending}', '{templates.completed}'"
    tables = (*TABLES, ("idempotency", "request_id"))
    out = [f"CREATE TABLE tmpl_{t} AS SELECT * FROM {t} WHERE {k} IN ({ids})" for t, k in tables]
    out += [f"DELETE FROM {t} WHERE {k} IN ({ids})" for t, k in tables[::-1]]
    return [*out, "DELETE FROM fair_keys WHERE key LIKE 'bench/template-%'"]


async def stash_templates(db: Database, templates: Templates) -> None:
    if db.storage == "sqlite":
        conn = sqlite3.connect(db.path)
        with conn:
            for statement in stash_sql(templates):
                conn.execute(statement)
        conn.close()
        return
    pg = await asyncpg.connect(db.url)
    try:
        async with pg.transaction():
            for statement in stash_sql(templates):
                await pg.execute(statement)
    finally:
        await pg.close()


def plan(first: int, count: int, users: int, template: str, created: list[float]) -> list[tuple[Any, ...]]:
    """Rows of the `fill` table, (i, id, user, template, created, keyed), for clones
    first..first+count; `created[j]` is the j-th clone's created_at."""
    return [
        (i, new_request_id(created[j]), f"u{i % users}", template, created[j], i % 2)
        for j, i in enumerate(range(first, first + count))
    ]


def spread(count: int, end: float, span: float) -> list[float]:
    """`count` creation times, evenly over the `span` seconds before `end`, oldest first."""
    return [end - span * (count - j) / count for j in range(count)]


def batches(
    parts: list[tuple[str, int]], users: int, first: int, span: float
) -> Iterator[list[tuple[Any, ...]]]:
    """The fill rows of (template, count) parts, in order, BATCH at a time, created over the
    `span` seconds before now (the first part the oldest)."""
    created = spread(sum(count for _, count in parts), time.time(), span)
    j = 0
    for template, count in parts:
        for start in range(first, first + count, BATCH):
            n = min(BATCH, first + count - start)
            yield plan(start, n, users, template, created[j : j + n])
            j += n
        first += count


def _exprs(columns: list[str], pg: bool) -> str:
    """The SELECT list cloning template t for fill row f: t0 is the template request, so each
    clone's times keep the template's gaps from its creation."""
    out = []
    for c in columns:
        if c == "id" or c == "request_id":
            out.append("f.id")
        elif c == "user_id":
            out.append("f.user_id")
        elif c == "fairness_key":
            out.append("CASE WHEN t.fairness_key = '' THEN '' ELSE t.owner || '/' || f.user_id END")
        elif c == "data":  # an event's JSON names its request (and a completed one, its user)
            text = "t.data::text" if pg else "t.data"
            swap = f"replace(replace({text}, t0.id, f.id), t0.user_id, f.user_id)"
            out.append(f"{swap}::jsonb" if pg else swap)
        elif c in TIMES:
            out.append(f"t.{c} + (f.created - t0.created_at)")
        else:
            out.append(f"t.{c}")
    return ", ".join(out)


def _sql(table: str, columns: list[str], key: str, pg: bool = False) -> str:
    """Clone `table`'s template rows (joined on `key`) for every fill row."""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {_exprs(columns, pg)} FROM fill f "
        f"JOIN tmpl_{table} t ON t.{key} = f.template JOIN tmpl_requests t0 ON t0.id = f.template"
    )


TABLES = (("requests", "id"), ("events", "request_id"), ("attempts", "request_id"))
"""The tables cloned column by column, and the column naming the request."""
IDEM = (
    "INSERT INTO idempotency (scope, key, fingerprint, request_id, created_at) "
    "SELECT 'bench:' || f.user_id || ':/v1/chat', 'fill-' || f.i, k.fingerprint, f.id, "
    "k.created_at + (f.created - t0.created_at) FROM fill f JOIN tmpl_idempotency k ON k.request_id = f.template "
    "JOIN tmpl_requests t0 ON t0.id = f.template WHERE f.keyed = 1"
)
KEYS = (
    "INSERT INTO fair_keys (key, next_turn) SELECT DISTINCT 'bench/' || f.user_id, "
    "(SELECT COALESCE(min(next_turn), 0) FROM fair_keys) FROM fill f "
    "JOIN tmpl_requests t ON t.id = f.template WHERE t.status = 'pending' ON CONFLICT (key) DO NOTHING"
)
FILL_TABLE = (
    "CREATE TEMP TABLE fill (i INTEGER, id TEXT, user_id TEXT, template TEXT, created REAL, keyed INTEGER)"
)


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def fill_sqlite(
    path: str,
    parts: list[tuple[str, int]],
    users: int,
    first: int = 0,
    span: float = SPAN_S,
    analyze: bool = True,
) -> None:
    """Clone (template, count) for each part into the SQLite file at `path` (the store may be open)."""
    conn = sqlite3.connect(path, timeout=60)
    conn.execute("PRAGMA synchronous = NORMAL")
    statements = [_sql(t, _sqlite_columns(conn, t), k) for t, k in TABLES] + [IDEM, KEYS]
    conn.execute(FILL_TABLE)
    for rows in batches(parts, users, first, span):
        with conn:
            conn.execute("DELETE FROM fill")
            conn.executemany("INSERT INTO fill VALUES (?, ?, ?, ?, ?, ?)", rows)
            for statement in statements:
                conn.execute(statement)
    with conn:
        for table, folds in (("queue_counts", SQLITE_FOLD), ("request_counts", SQLITE_FOLD_COUNTS)):
            last = conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]
            for statement in folds if last is not None else ():
                conn.execute(statement, {"last": last})
    if analyze:  # no ANALYZE: the store never runs it, so a real database has no sqlite_stat1
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _pg_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "AND is_generated = 'NEVER' AND identity_generation IS NULL ORDER BY ordinal_position",
        table,
    )
    return [r[0] for r in rows]


async def fill_pg(
    url: str,
    parts: list[tuple[str, int]],
    users: int,
    first: int = 0,
    span: float = SPAN_S,
    analyze: bool = True,
) -> None:
    """Clone (template, count) for each part into the PostgreSQL database at `url`."""
    conn = await asyncpg.connect(url)
    try:
        statements = [_sql(t, await _pg_columns(conn, t), k, pg=True) for t, k in TABLES] + [IDEM, KEYS]
        await conn.execute(FILL_TABLE.replace("REAL", "double precision"))
        for rows in batches(parts, users, first, span):
            async with conn.transaction():
                await conn.execute("TRUNCATE fill")
                await conn.copy_records_to_table("fill", records=rows)
                for statement in statements:
                    await conn.execute(statement)
        await conn.execute(PG_FOLD)
        await conn.execute(PG_FOLD_COUNTS)
        if analyze:  # and the fill's pages written out now, not by a checkpoint during the windows
            await conn.execute("VACUUM ANALYZE")
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
