#!/usr/bin/env python3
"""What one scrape's queue read costs, and what keeping the counts costs the writes.

    python bench/metrics_bench.py [--sizes 100000,1000000] [--finished 200000] [--repeat 7]
                                  [--writes 4000] [--backends sqlite,postgres]
                                  [--pg postgresql://127.0.0.1:5432/postgres]

Reads: for each backend and size, a fresh database migrated by errand, N pending rows over 8
agents (plus 5 % processing, and `--finished` completed rows) bulk-loaded by SQL (a million
submits would take minutes and measure the submit path instead; the count triggers fire for
them as for submits), then `queue_stats()` through the real Store: the first read (it sums
every change since the load, then folds them), then `--repeat` reads (median and max, ms), and
beside them the COUNT over the partial index that the counts replace (`count_scan_ms`).

Writes: `--writes` submits (64 at a time), then claim + finish of each, through the real Store,
on a fresh database with the count triggers and on one without them (dropped): the same run's
baseline. One JSON line per measurement.
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
    """An INSERT ... SELECT of `count` requests numbered from `first` (dialect: `series`).
    Finished requests are older than the queue: the oldest-pending read must skip them."""
    created = "1.0e9 - n" if status == "completed" else "1.0e9 + n"
    return (
        "INSERT INTO requests (id, owner, user_id, kind, agent, message, metadata, mode, status, "
        "max_attempts, created_at, run_at, updated_at, completed_at) "
        f"SELECT 'r' || (n + {first}), 'o', 'u', 'chat', {agent_expr}, 'm', '{{}}', 'async', '{status}', 3, "
        f"{created}, {created}, {created}, "
        f"{'1.0e9 + n' if status == 'completed' else 'NULL'} FROM {series}"
    ).replace("{count}", str(count))


def load_sqlite(path: Path, pending: int, finished: int) -> None:
    conn = sqlite3.connect(path)
    series = (
        "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) SELECT n FROM s)"
    )
    agent = f"'agent-' || (n % {AGENTS})"
    with conn:
        conn.execute(_rows_sql(0, pending, "pending", agent, series))
        conn.execute(_rows_sql(pending, pending // 20, "processing", agent, series))
        conn.execute(_rows_sql(2 * pending, finished, "completed", agent, series))
    conn.execute("ANALYZE")
    conn.close()


def count_scan_sqlite(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        conn.execute(COUNT_SCAN).fetchall()
        return f"{(time.perf_counter() - started) * 1000:.1f}"
    finally:
        conn.close()


def plan_sqlite(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return " | ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {QUEUE_SQL}"))
    finally:
        conn.close()


async def load_postgres(url: str, pending: int, finished: int) -> tuple[str, str]:
    conn = await asyncpg.connect(url)
    try:
        series = "generate_series(1, {count}) AS n"
        agent = f"'agent-' || (n % {AGENTS})"
        await conn.execute(_rows_sql(0, pending, "pending", agent, series))
        await conn.execute(_rows_sql(pending, pending // 20, "processing", agent, series))
        await conn.execute(_rows_sql(2 * pending, finished, "completed", agent, series))
        await conn.execute("VACUUM ANALYZE requests")
        started = time.perf_counter()
        await conn.fetch(COUNT_SCAN)
        scan = (time.perf_counter() - started) * 1000
        plan = await conn.fetch(f"EXPLAIN {QUEUE_SQL}")
        return f"{scan:.1f}", " | ".join(str(r[0]).strip() for r in plan)
    finally:
        await conn.close()


COUNT_SCAN = (
    "SELECT status, agent, COUNT(*) FROM requests WHERE status IN ('pending', 'processing') "
    "GROUP BY status, agent"
)
DROP_TRIGGERS = [f"DROP TRIGGER requests_queue_{op}" for op in ("insert", "update", "delete")]


async def time_reads(url: str, repeat: int) -> dict[str, Any]:
    store = await open_store(url, clock=SystemClock(), migrate=False)
    try:
        started = time.perf_counter()
        await store.queue_stats()  # sums every change since the load, then folds
        first = (time.perf_counter() - started) * 1000
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            stats = await store.queue_stats()
            times.append((time.perf_counter() - started) * 1000)
        return {
            "first_read_ms": round(first, 1),
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
        scan, plan = await load_postgres(url, size, finished)
        return {**await time_reads(url, repeat), "count_scan_ms": float(scan), "plan": plan}
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
        scan = count_scan_sqlite(path)
        return {**await time_reads(url, repeat), "count_scan_ms": float(scan), "plan": plan_sqlite(path)}


async def write_rate(url: str, writes: int, *, triggers: bool, pg: bool) -> dict[str, Any]:
    """Submits per second, then claim + finish per second, through the real Store."""
    from errand.clock import new_request_id
    from errand.models import NewRequest, Result, Status

    await migrated(url)
    if not triggers:
        if pg:
            conn = await asyncpg.connect(url)
            for drop in DROP_TRIGGERS:
                await conn.execute(f"{drop} ON requests")
            await conn.close()
        else:
            lite = sqlite3.connect(url.removeprefix("sqlite:///"))
            for drop in DROP_TRIGGERS:
                lite.execute(drop)
            lite.commit()
            lite.close()
    store = await open_store(url, clock=SystemClock(), migrate=False)
    try:
        started = time.perf_counter()
        for first in range(0, writes, 64):
            batch = [
                NewRequest(
                    id=new_request_id(), owner="o", user_id="u", message="m", agent=f"agent-{n % AGENTS}"
                )
                for n in range(first, min(writes, first + 64))
            ]
            await asyncio.gather(*(store.submit(new) for new in batch))
        submit_s = time.perf_counter() - started
        started = time.perf_counter()
        done = 0
        while done < writes:
            claims = await store.claim("bench", 64, 60)
            await asyncio.gather(
                *(
                    store.finish(c.request.id, c.attempt, Status.COMPLETED, result=Result("ok"))
                    for c in claims
                )
            )
            done += len(claims)
        work_s = time.perf_counter() - started
        return {
            "triggers": triggers,
            "submits_per_s": round(writes / submit_s),
            "claim_finish_per_s": round(writes / work_s),
        }
    finally:
        await store.close()


async def run_writes(backend: str, admin_url: str, writes: int) -> None:
    for triggers in (True, False, True, False):  # alternated: drift on a shared machine shows
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                result = await write_rate(
                    f"sqlite:///{Path(tmp) / 'w.db'}", writes, triggers=triggers, pg=False
                )
        else:
            name = "errand_metrics_bench_writes"
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                result = await write_rate(
                    admin_url.rsplit("/", 1)[0] + f"/{name}", writes, triggers=triggers, pg=True
                )
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                await admin.close()
        print(json.dumps({"backend": backend, "writes": writes, **result}), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--finished", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--writes", type=int, default=4000, help="0: skip the write measurement")
    parser.add_argument("--pg", default="postgresql://127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        if args.writes:
            await run_writes(backend, args.pg, args.writes)
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
