#!/usr/bin/env python3
"""What one scrape's queue read costs: `store.queue_stats()` with N pending requests.

    python bench/metrics_bench.py [--sizes 100000,1000000] [--finished 200000] [--repeat 7]
                                  [--backends sqlite,postgres] [--pg postgresql://127.0.0.1/postgres]

For each backend and size: a fresh database migrated by errand, N pending rows over 8 agents
(plus 5 % processing, and `--finished` completed rows that the read must not touch) bulk-loaded
by SQL (a million submits would take minutes and measure the submit path instead), ANALYZE, then
`queue_stats()` timed `--repeat` times through the real Store (median and max, ms), and the
query plan (EXPLAIN) of store/queue.py's statement. One JSON line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from errand.clock import SystemClock
from errand.store import open_store
from errand.store.queue import QUEUE_SQL

AGENTS = 8


def _rows_sql(first: int, count: int, status: str, agent_expr: str, series: str) -> str:
    """An INSERT ... SELECT of `count` requests numbered from `first` (dialect: `series`)."""
    return (
        "INSERT INTO requests (id, owner, user_id, kind, agent, message, metadata, mode, status, "
        "max_attempts, created_at, run_at, updated_at, completed_at) "
        f"SELECT 'r' || (n + {first}), 'o', 'u', 'chat', {agent_expr}, 'm', '{{}}', 'async', '{status}', 3, "
        f"1.0e9 + n, 1.0e9 + n, 1.0e9 + n, "
        f"{'1.0e9 + n' if status == 'completed' else 'NULL'} FROM {series}"
    ).replace("{count}", str(count))


def load_sqlite(path: Path, pending: int, finished: int) -> None:
    conn = sqlite3.connect(path)
    series = "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) SELECT n FROM s)"
    agent = f"'agent-' || (n % {AGENTS})"
    with conn:
        conn.execute(_rows_sql(0, pending, "pending", agent, series))
        conn.execute(_rows_sql(pending, pending // 20, "processing", agent, series))
        conn.execute(_rows_sql(2 * pending, finished, "completed", agent, series))
    conn.execute("ANALYZE")
    conn.close()


def plan_sqlite(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return " | ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {QUEUE_SQL}"))
    finally:
        conn.close()


async def load_postgres(url: str, pending: int, finished: int) -> str:
    conn = await asyncpg.connect(url)
    try:
        series = "generate_series(1, {count}) AS n"
        agent = f"'agent-' || (n % {AGENTS})"
        await conn.execute(_rows_sql(0, pending, "pending", agent, series))
        await conn.execute(_rows_sql(pending, pending // 20, "processing", agent, series))
        await conn.execute(_rows_sql(2 * pending, finished, "completed", agent, series))
        await conn.execute("VACUUM ANALYZE requests")
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {QUEUE_SQL}")
        return " | ".join(str(r[0]).strip() for r in rows)
    finally:
        await conn.close()


async def time_reads(url: str, repeat: int) -> dict[str, Any]:
    store = await open_store(url, clock=SystemClock(), migrate=False)
    try:
        await store.queue_stats()  # warm: connections, caches
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            stats = await store.queue_stats()
            times.append((time.perf_counter() - started) * 1000)
        return {
            "median_ms": round(statistics.median(times), 2),
            "max_ms": round(max(times), 2),
            "rows_counted": sum(stats.depth.values()),
        }
    finally:
        await store.close()


async def migrated(url: str) -> None:
    store = await open_store(url, clock=SystemClock(), migrate=True)
    await store.close()


async def run_postgres(admin_url: str, size: int, finished: int, repeat: int) -> dict[str, Any]:
    name = f"errand_metrics_bench_{size}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await migrated(url)
        plan = await load_postgres(url, size, finished)
        return {**await time_reads(url, repeat), "plan": plan}
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()


async def run_sqlite(size: int, finished: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        await migrated(url)
        load_sqlite(path, size, finished)
        return {**await time_reads(url, repeat), "plan": plan_sqlite(path)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--finished", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg", default="postgresql://127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.perf_counter()
            if backend == "sqlite":
                result = await run_sqlite(size, args.finished, args.repeat)
            else:
                result = await run_postgres(args.pg, size, args.finished, args.repeat)
            line = {"backend": backend, "pending": size, "finished": args.finished, **result}
            line["wall_s"] = round(time.perf_counter() - started, 1)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
