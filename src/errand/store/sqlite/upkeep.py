"""Opening and upkeep of SqliteStore: the checks, folder and connections before the file opens,
the purge run as short writer transactions, the dead-worker sweep and the queue gauges."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from errand.clock import Clock
from errand.errors import ConfigError, StoreUnavailable
from errand.models import QueueStats, Request
from errand.store import processes, purge_rules, rules
from errand.store.queue import FOLD_AT
from errand.store.sqlite import attempts, reads, writes
from errand.store.sqlite.connections import SYNCHRONOUS, Readers, Writer, connect
from errand.store.sqlite.fileguard import FileGuard


def path_of(url: str) -> str:
    """sqlite:///relative/path.db -> relative/path.db; sqlite:////abs/path.db -> /abs/path.db."""
    prefix = "sqlite:///"
    path = url[len(prefix) :].split("?", 1)[0] if url.startswith(prefix) else ""
    if not path or path == ":memory:":
        raise ConfigError(f"storage.url: expected sqlite:///path.db (a file), got {url!r}")
    return path


def open_path(url: str, synchronous: str, poll_interval: float, busy_timeout: float) -> str:
    """The file of a sqlite URL with its folder made, after the options of SqliteStore.open are checked."""
    if synchronous.lower() not in SYNCHRONOUS:
        raise ConfigError(f"storage.sqlite_synchronous: expected full or normal, got {synchronous!r}")
    if poll_interval <= 0:
        raise ConfigError(f"poll_interval must be > 0, got {poll_interval!r}")
    if busy_timeout < 0:
        raise ConfigError(f"storage.sqlite_busy_timeout_seconds must be >= 0, got {busy_timeout!r}")
    path = path_of(url)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"sqlite: cannot create the folder of {path!r}: {exc}") from exc
    return path


def connections(path: str, synchronous: str, readers: int, busy_timeout: float) -> tuple[Writer, Readers]:
    """The writer thread's connection and the reader pool of one file (not started yet)."""
    guard = FileGuard(path)
    writer = Writer(
        lambda: connect(path, synchronous=synchronous, writer=True, busy_timeout=busy_timeout),
        guard=guard,
        busy_timeout=busy_timeout,
        synchronous=synchronous,
    )
    pool = Readers(
        lambda: connect(path, synchronous=synchronous, writer=False, busy_timeout=busy_timeout),
        readers,
        guard,
    )
    return writer, pool


async def purge(writer: Writer, clock: Clock, result_ttl: float, tombstone_ttl: float) -> int:
    """Tombstone expired results, drop old tombstones and keys, chunk after chunk. Each chunk is
    a background op of the writer (a transaction of its own, run only when no submit or other
    write is queued) sized to hold the writer ~5-10 ms (purge_rules.next_purge_chunk), with a rest
    between chunks (purge_rules.purge_rest): a write arriving meanwhile waits for one short chunk."""
    total, chunk = 0, purge_rules.PURGE_CHUNK
    while True:
        tombstoned, dropped, keys, seconds = await writer.submit(
            functools.partial(
                timed_chunk,
                chunk=chunk,
                result_ttl=result_ttl,
                tombstone_ttl=tombstone_ttl,
                now=clock.now(),
            ),
            background=True,
        )
        total += tombstoned + dropped
        if purge_rules.purge_finished(tombstoned, dropped, keys, chunk):
            return total
        chunk = purge_rules.next_purge_chunk(chunk, seconds)
        await asyncio.sleep(purge_rules.purge_rest(seconds))


def timed_chunk(
    conn: sqlite3.Connection, chunk: int, result_ttl: float, tombstone_ttl: float, now: float
) -> tuple[int, int, int, float]:
    """purge_chunk and the seconds it held the writer thread (the size of the next one)."""
    started = time.monotonic()
    tombstoned, dropped, keys = purge_chunk(conn, result_ttl, tombstone_ttl, now, chunk)
    return tombstoned, dropped, keys, time.monotonic() - started


# The three searches of a purge chunk ($1 cutoff, $2 chunk): each must use an index, or every
# chunk of a long purge reads the whole table while holding the writer (tests/store/test_sqlite_purge.py).
# Left to itself the planner takes requests_by_status for PURGE_OUTLIVED, which walks past every
# tombstone (they keep their status) in each chunk: quadratic while tombstones are kept.
PURGE_OUTLIVED = (
    "SELECT id FROM requests INDEXED BY requests_outlived "  # not requests_by_status: see below
    f"WHERE {rules.outlived_sql('?')} AND expired_at IS NULL LIMIT ?"
)
PURGE_TOMBSTONES = (
    "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE expired_at IS NOT NULL "
    "AND expired_at <= ? LIMIT ?)"
)
PURGE_KEYS = (
    "DELETE FROM idempotency WHERE (scope, key) IN (SELECT scope, key FROM idempotency "
    "WHERE created_at <= ? LIMIT ?)"
)


def purge_chunk(
    conn: sqlite3.Connection,
    result_ttl: float,
    tombstone_ttl: float,
    now: float,
    chunk: int = purge_rules.PURGE_CHUNK,
) -> tuple[int, int, int]:
    """Tombstone and drop up to `chunk` requests, and as many old keys (so the writer is never
    held long). Returns (tombstoned, dropped, keys dropped)."""
    ids = [row[0] for row in conn.execute(PURGE_OUTLIVED, (rules.result_cutoff(now, result_ttl), chunk))]
    tombstone(conn, ids, now)
    dropped = conn.execute(PURGE_TOMBSTONES, (now - tombstone_ttl, chunk)).rowcount
    keys = conn.execute(PURGE_KEYS, (rules.key_cutoff(now), chunk)).rowcount
    return len(ids), dropped, keys


def tombstone(conn: sqlite3.Connection, ids: list[str], now: float) -> None:
    """The content of these requests dropped, their rows kept as tombstones (expired_at): the one
    rule of what the purge and `forget` remove."""
    if not ids:
        return
    marks = ", ".join("?" * len(ids))
    conn.execute(f"DELETE FROM events WHERE request_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM deliveries WHERE request_id IN ({marks})", ids)
    attempts.forget(conn, ids, marks)
    conn.execute(
        "UPDATE requests SET message = '', metadata = '{}', progress = NULL, result = NULL, "
        "input_request = NULL, inputs = NULL, input_state = NULL, "
        f"error = NULL, expired_at = ?, updated_at = ? WHERE id IN ({marks})",
        (now, now, *ids),
    )


def forget(conn: sqlite3.Connection, request_id: str, now: float, cutoff: float | None) -> None:
    """Store.forget: the live, finished request checked and tombstoned in one write transaction."""
    rules.forgettable(reads.get(conn, request_id, cutoff))
    tombstone(conn, [request_id], now)


async def requeue_dead(
    readers: Readers, writer: Writer, now: float, after: Callable[[list[Request]], None]
) -> list[Request]:
    """The leases of workers of this node whose process is gone, taken back: one read, and a
    write only when some died."""
    node = processes.this_process().node
    workers = await readers.run(lambda c: reads.workers_on(c, node))
    dead = [worker_id for worker_id, process in workers if processes.dead(process)]
    if not dead:
        return []
    return await writer.submit(lambda c: writes.requeue_dead(c, dead, now), after)


async def queue_stats(readers: Readers, writer: Writer) -> QueueStats:
    """The counters summed; folded into one row per key once they have grown (store/queue.py)."""
    stats, changes = await readers.run(reads.queue_stats)
    if changes > FOLD_AT:
        await writer.submit(reads.fold_queue_counts, relaxed=True)
    return stats
