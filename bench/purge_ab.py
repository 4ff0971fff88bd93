"""The SQLite purge under submits, A/B (issue 11 item 7 d): a copy of backlog_bench.py's `purge`
that also reports the WAL's size after the purge, load1 around the run, and the code it ran
(the `errand` package imported, so PYTHONPATH can point at another worktree's src), as one line.

    PYTHONPATH=/work/wt/purge-base/src python bench/purge_ab.py purge --rows 200000 --refill 0

`windows` (bench/purge_windows.py): the same purge switched on and off in alternating windows
under steady submits, each "on" window compared with the "off" one before it:

    python bench/purge_ab.py windows --storage sqlite --rows 200000 --window 5 --windows 40
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from errand.clock import SystemClock, new_request_id
from errand.models import IdempotencyKey, NewRequest
from errand.store import open_store
from errand.store.base import Store

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
        self.folder = tempfile.mkdtemp(prefix="errand-purge-ab-")  # not errand-backlog-*: others clean those
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

    async def open(self) -> Store:
        return await open_store(self.url, clock=SystemClock(), synchronous="normal", pool_size=10)


async def submit_slices(store: Store, rows: int, slice_rows: int, concurrency: int) -> list[dict[str, Any]]:
    """Submit `rows`, concurrency at once; one line per slice of `slice_rows`."""
    counter = iter(range(rows))
    latencies: list[float] = [0.0] * rows
    done_at: list[float] = [0.0] * rows

    async def client() -> None:
        for n in counter:
            started = time.perf_counter()
            await store.submit(new(n), key(n))
            done_at[n] = time.perf_counter()
            latencies[n] = done_at[n] - started

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    lines = []
    for first in range(0, rows, slice_rows):
        part = slice(first, min(rows, first + slice_rows))
        ends = sorted(done_at[part])
        begin = t0 if first == 0 else sorted(done_at[first - slice_rows : first])[-1]
        seconds = max(ends[-1] - begin, 1e-9)
        lines.append(
            {
                "rows": f"{first:,}-{part.stop:,}",
                "per_s": (part.stop - first) / seconds,
                "p50_ms": statistics.median(latencies[part]) * 1000,
                "p99_ms": statistics.quantiles(latencies[part], n=100)[98] * 1000,
            }
        )
    return lines


async def bench_submit(storage: str, rows: int, slice_rows: int, concurrency: int) -> None:
    db = Database(storage)
    await db.create()
    store = await db.open()
    try:
        lines = await submit_slices(store, rows, slice_rows, concurrency)
    finally:
        await store.close()
    print(f"\n## submit, {storage}: {rows:,} rows, {concurrency} concurrent, half keyed")
    print("| rows | submits/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for line in lines:
        print(f"| {line['rows']} | {line['per_s']:,.0f} | {line['p50_ms']:.2f} | {line['p99_ms']:.2f} |")
    ratio = lines[-1]["per_s"] / lines[0]["per_s"]
    print(
        f"last slice / first slice throughput: {ratio:.0%} (target >= 85 %); db {await db.size_mb():.0f} MB"
    )
    await db.drop()


# -- purge ------------------------------------------------------------------------------------------
SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO requests (id, owner, user_id, kind, agent, message, session_id, metadata, trigger_name,
    webhook_url, mode, status, attempt, failures, max_attempts, created_at, started_at, completed_at,
    run_at, seq, updated_at, result)
SELECT 'old' || i, 'bench', 'u' || (i % 100), 'chat', 'echo', printf('%.100c', 'x'), NULL, '{}', NULL,
    NULL, 'async', 'completed', 1, 0, 3, ?, ?, ?, ?, 3, ?, '{"text": "done"}' FROM n"""
SQLITE_EVENTS = "INSERT INTO events SELECT id, 3, 'completed', '{}', completed_at FROM requests WHERE id >= 'old' AND id < 'olf'"
SQLITE_KEYS = (
    "INSERT INTO idempotency SELECT 'bench:old:/v1/chat', id, 'fp', id, completed_at FROM requests "
    "WHERE id >= 'old' AND id < 'olf'"
)
PG_FILL = """
INSERT INTO requests (id, owner, user_id, kind, agent, message, metadata, mode, status, attempt,
    failures, max_attempts, created_at, started_at, completed_at, run_at, seq, updated_at, result)
SELECT 'old' || i, 'bench', 'u' || (i % 100), 'chat', 'echo', repeat('x', 100), '{}', 'async',
    'completed', 1, 0, 3, $3, $3, $3, $3, 3, $3, '{"text": "done"}' FROM generate_series($1::int, $2::int) i"""
PG_EVENTS = (
    "INSERT INTO events SELECT id, 3, 'completed', '{}', completed_at FROM requests "
    "WHERE id >= 'old' AND id < 'olf'"
)
PG_KEYS = (
    "INSERT INTO idempotency SELECT 'bench:old:/v1/chat', id, 'fp', id, completed_at FROM requests "
    "WHERE id >= 'old' AND id < 'olf'"
)


async def fill_expired(db: Database, rows: int) -> None:
    """`rows` requests completed two days ago, each with one event and one idempotency key."""
    old = time.time() - 2 * DAY
    if db.storage == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.path)
        for first in range(0, rows, 100_000):
            last = min(rows, first + 100_000) - 1
            conn.execute(SQLITE_FILL, (first, last, old, old, old, old, old))
            conn.commit()
        conn.execute(SQLITE_EVENTS)
        conn.execute(SQLITE_KEYS)
        conn.commit()
        conn.close()
        return
    conn = await asyncpg.connect(db.url)
    try:
        for first in range(0, rows, 100_000):
            await conn.execute(PG_FILL, first, min(rows, first + 100_000) - 1, old)
        await conn.execute(PG_EVENTS)
        await conn.execute(PG_KEYS)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def paced_submits(store: Store, stop: asyncio.Event, rate: float, start: int) -> list[float]:
    """Submits at `rate`/s (16 clients) until stop; their latencies (s)."""
    latencies: list[float] = []
    counter = iter(range(start, start + 10**9))

    async def client() -> None:
        gap = 16 / rate
        while not stop.is_set():
            started = time.perf_counter()
            await store.submit(new(next(counter)), None)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, gap - (time.perf_counter() - started)))

    await asyncio.gather(*(client() for _ in range(16)))
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000


def wal_size_mb(db: Database) -> float:
    wal = Path(f"{db.path}-wal")
    return wal.stat().st_size / 1e6 if db.storage == "sqlite" and wal.exists() else 0.0


async def bench_purge(storage: str, rows: int, seconds: float, rate: float, refill: int) -> None:
    db = Database(storage)
    await db.create()
    store = await db.open()  # migrates
    await store.close()
    load1 = os.getloadavg()[0]
    t = time.perf_counter()
    await fill_expired(db, rows)
    filled = await db.size_mb()
    store = await db.open()
    try:
        stop = asyncio.Event()
        quiet = asyncio.create_task(paced_submits(store, stop, rate, 0))
        await asyncio.sleep(seconds)
        stop.set()
        before = await quiet
        stop = asyncio.Event()
        during_task = asyncio.create_task(paced_submits(store, stop, rate, 10**8))
        t = time.perf_counter()
        purged = await store.purge_expired(DAY, 0.0)
        purge_s = time.perf_counter() - t
        stop.set()
        during = await during_task
        after_purge, wal_mb = await db.size_mb(), wal_size_mb(db)  # before close checkpoints it
        if refill:  # new rows after the purge: is the freed space reused?
            await submit_slices(store, refill, refill, 64)
        refilled = await db.size_mb()
    finally:
        await store.close()
    import errand

    ratio = p99(during) / p99(before)
    print(
        f"| {Path(errand.__file__).parents[2].name} | {storage} | {rows:,} | {p99(before):.1f} / {p99(during):.1f}"
        f" | {ratio:.2f}x | {statistics.median(before) * 1000:.1f} / {statistics.median(during) * 1000:.1f}"
        f" | {purged / purge_s:,.0f} rows/s ({purge_s:.1f} s) | {filled:.0f} -> {after_purge:.0f} MB"
        f" | {wal_mb:.1f} MB | {refilled:.0f} MB | {load1:.2f} -> {os.getloadavg()[0]:.2f} |",
        flush=True,
    )
    await db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["submit", "purge", "windows"])
    parser.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="purge: the baseline's length")
    parser.add_argument("--rate", type=float, default=500.0, help="purge: submits per second")
    parser.add_argument(
        "--refill",
        type=int,
        help="rows submitted after the purge (default: purge --rows, windows -1: as many as purged)",
    )
    parser.add_argument("--window", type=float, default=5.0, help="windows: each window's seconds")
    parser.add_argument("--windows", type=int, default=10**6, help="windows: at most this many (off + on)")
    args = parser.parse_args()
    if args.what == "windows":  # bench/purge_windows.py (this file stays under 400 lines)
        from purge_windows import bench_windows

        refill = -1 if args.refill is None else args.refill
        asyncio.run(bench_windows(args.storage, args.rows, args.window, args.windows, args.rate, refill))
    elif args.what == "submit":
        asyncio.run(bench_submit(args.storage, args.rows, args.slice, args.concurrency))
    else:
        refill = args.rows if args.refill is None else args.refill
        asyncio.run(bench_purge(args.storage, args.rows, args.seconds, args.rate, refill))


if __name__ == "__main__":
    main()
