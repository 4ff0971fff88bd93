"""Cost flat with the backlog (issue 11, item 7 c and d), at the store, on SQLite or PostgreSQL.

  submit: `--rows` submits (64 concurrent, half with an idempotency key, as clients send them)
          into an empty database with no workers, so every row stays: throughput and p50 per
          `--slice` rows. Target: the last slice >= 85 % of the first.
  purge:  `--rows` finished requests completed two days ago (each with an event and an
          idempotency key, inserted in bulk), then submits at a steady pace: p99 for
          `--seconds` without a purge, then while `purge_expired` (result_ttl 1 day, tombstone_ttl 0:
          every row tombstoned and dropped) runs. Target: p99 during <= 2x p99 before; the
          database size after the purge, and after as many new rows again, is printed.

  submit-ab, drain-ab, fair-ab: the same questions as interleaved A/B windows against a
          bulk-loaded backlog (bench/backlog_ab.py), which a change of the machine's load during
          the run cannot pass off as the row count's doing.

The store is measured without HTTP: the API's own cost per submit does not change with the
backlog (bench/errand_bench.py measures it), the store's indexes do.

    python bench/backlog_bench.py submit --storage sqlite --rows 1000000 --slice 100000
    python bench/backlog_bench.py purge --storage postgres --rows 1000000
    python bench/backlog_bench.py submit-ab|drain-ab --storage sqlite|postgres --rows 1000000 --rounds 10
    python bench/backlog_bench.py fair-ab --storage sqlite|postgres --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from backlog_fill import DAY, Database, key, new

from errand.store.base import Store


async def submit_slices(store: Store, rows: int, slice_rows: int, concurrency: int) -> list[dict[str, Any]]:
    """Submit `rows`, concurrency at once; one line per slice of `slice_rows`."""
    counter = iter(range(rows))
    latencies: list[float] = [0.0] * rows
    done_at: list[float] = [0.0] * rows
    load1: dict[int, float] = {}  # slice -> the load average when its last submit returned

    async def client() -> None:
        for n in counter:
            started = time.perf_counter()
            await store.submit(new(n), key(n))
            done_at[n] = time.perf_counter()
            latencies[n] = done_at[n] - started
            if (n + 1) % slice_rows == 0 or n + 1 == rows:
                load1[n // slice_rows] = os.getloadavg()[0]
                print(
                    f"  {n + 1:,} submitted at {time.strftime('%H:%M:%S', time.gmtime())} UTC, load1 {load1[n // slice_rows]:.2f}",
                    flush=True,
                )

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
                "load1": load1.get(first // slice_rows, float("nan")),
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
    print("| rows | submits/s | p50 ms | p99 ms | load1 at its end |\n|---|---|---|---|---|")
    for line in lines:
        print(
            f"| {line['rows']} | {line['per_s']:,.0f} | {line['p50_ms']:.2f} | {line['p99_ms']:.2f} | {line['load1']:.2f} |"
        )
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


@dataclass
class PurgeRun:
    """What one purge under paced submits measured (latencies in s, sizes in MB)."""

    before: list[float]
    during: list[float]
    purged: int
    purge_s: float
    fill_s: float
    filled: float
    after_purge: float
    wal_after: float
    refilled: float


def wal_size_mb(db: Database) -> float:
    wal = Path(f"{db.path}-wal")
    return wal.stat().st_size / 1e6 if db.storage == "sqlite" and wal.exists() else 0.0


async def run_purge(db: Database, rows: int, seconds: float, rate: float, refill: int) -> PurgeRun:
    """Fill `rows` expired rows, submit at `rate` for `seconds`, then again while they are purged."""
    await db.create()
    store = await db.open()  # migrates
    await store.close()
    t = time.perf_counter()
    await fill_expired(db, rows)
    filled, fill_s = await db.size_mb(), time.perf_counter() - t
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
        after_purge, wal_after = await db.size_mb(), wal_size_mb(db)  # before close checkpoints it
        if refill:  # new rows after the purge: is the freed space reused?
            await submit_slices(store, refill, refill, 64)
        refilled = await db.size_mb()
    finally:
        await store.close()
    return PurgeRun(before, during, purged, purge_s, fill_s, filled, after_purge, wal_after, refilled)


async def bench_purge(storage: str, rows: int, seconds: float, rate: float, refill: int) -> None:
    db = Database(storage)
    run = await run_purge(db, rows, seconds, rate, refill)
    before, during, purged, purge_s = run.before, run.during, run.purged, run.purge_s
    fill_s, filled, after_purge, refilled = run.fill_s, run.filled, run.after_purge, run.refilled
    print(f"\n## purge, {storage}: {rows:,} expired rows (filled in {fill_s:.0f} s), submits at {rate:g}/s")
    print("| phase | submits | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, values in (("no purge", before), (f"during the purge ({purge_s:.1f} s)", during)):
        print(f"| {name} | {len(values):,} | {statistics.median(values) * 1000:.2f} | {p99(values):.2f} |")
    print(
        f"purged {purged:,} rows ({purged / purge_s:,.0f}/s); p99 during / before: {p99(during) / p99(before):.2f}x"
    )
    print(
        f"database: {filled:.0f} MB filled, {after_purge:.0f} MB after the purge, {refilled:.0f} MB after {refill:,} new rows"
    )
    await db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["submit", "purge", "submit-ab", "drain-ab", "fair-ab"])
    parser.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="purge: the baseline's length")
    parser.add_argument("--rate", type=float, default=500.0, help="purge: submits per second")
    parser.add_argument("--refill", type=int, help="purge: rows submitted after it (default --rows)")
    parser.add_argument("--rounds", type=int, default=8, help="*-ab: windows of each side")
    parser.add_argument("--window-seconds", type=float, default=5.0, help="submit-ab: a window's length")
    parser.add_argument("--pending", type=float, default=0.2, help="submit-ab: share of the rows pending")
    parser.add_argument(
        "--sqlite-cache-mb",
        type=int,
        help="submit-ab experiment: the store's SQLite page cache (default 2 MB)",
    )
    parser.add_argument("--small", type=int, default=5000, help="drain-ab, fair-ab: the small backlog")
    parser.add_argument("--window", type=int, default=5000, help="drain-ab, fair-ab: requests per window")
    args = parser.parse_args()
    if args.what.endswith("-ab"):
        import backlog_ab

        if args.what == "submit-ab":
            asyncio.run(backlog_ab.bench_submit_ab(args))
        else:
            asyncio.run(backlog_ab.bench_drain_ab(args, fair_vs_fifo=args.what == "fair-ab"))
    elif args.what == "submit":
        asyncio.run(bench_submit(args.storage, args.rows, args.slice, args.concurrency))
    else:
        refill = args.rows if args.refill is None else args.refill
        asyncio.run(bench_purge(args.storage, args.rows, args.seconds, args.rate, refill))


if __name__ == "__main__":
    main()
