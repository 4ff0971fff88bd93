#!/usr/bin/env python3
"""The console's pages at a million requests: each read's latency over loopback HTTP, and its plan.

    python bench/dashboard_bench.py [--rows 1000000] [--calls 50] [--backends sqlite,postgres]
                                    [--pg postgresql://postgres@127.0.0.1:5432/postgres]

For each backend: a fresh database migrated by errand, seeded by SQL (bench/dashboard_seed.py:
the mix is described there), then a real `errand serve --no-workers` on loopback, and for each
console read `--calls` timed GETs after two warm-ups (p50, p95, max in ms, measured by the client:
server time plus one loopback round trip). The same run measures two baselines: GET /health (the
HTTP floor) and the plain COUNT ... GROUP BY status over the requests table that the overview's
counts replace (`count_scan_ms`, on its own connection). Then EXPLAIN of every query behind the
pages, flagged when it scans the requests table whole. One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml
from dashboard_seed import POSTGRES, SQLITE, statements

from errand.clock import SystemClock
from errand.console_models import Match
from errand.models import Status
from errand.store import console_sql as q
from errand.store import open_store
from errand.store.listing import list_query
from errand.store.postgres.sql import mark as pg_mark
from errand.store.rules import summary_columns

ADMIN = "bench-admin-key-0123"
ERRAND = str(Path(sys.executable).with_name("errand"))
BENCH = Path(__file__).resolve().parent
COUNT_SCAN = "SELECT status, COUNT(*) FROM requests GROUP BY status"
PAGES: list[tuple[str, str, dict[str, Any]]] = [
    ("health (baseline)", "/health", {}),
    ("overview", "/v1/admin/overview", {}),
    ("requests page 1", "/v1/requests", {}),
    ("status=failed", "/v1/requests", {"status": "failed"}),
    ("status=pending", "/v1/requests", {"status": "pending"}),
    ("agent=agent-3", "/v1/requests", {"agent": "agent-3"}),
    ("kind=schedule", "/v1/requests", {"kind": "schedule"}),
    ("status=failed&agent=agent-3", "/v1/requests", {"status": "failed", "agent": "agent-3"}),
    ("user_id=u42", "/v1/requests", {"user_id": "u42"}),
    ("since=last hour", "/v1/requests", {"since": "{hour_ago}"}),
    ("page 21 via cursor", "/v1/requests", {"cursor": "{cursor}"}),
    ("failed deliveries", "/v1/admin/deliveries", {"state": "failed"}),
]


def list_sql(dialect: str, cutoff: float, **f: Any) -> tuple[str, list[Any]]:
    """The statement a GET /v1/requests page runs (store/listing.py), for EXPLAIN."""
    mark = pg_mark if dialect == "pg" else (lambda _n, _t: "?")
    status = Status(f.pop("status")) if "status" in f else None
    query = list_query(
        None, f.pop("user_id", None), status, 50, None, mark=mark, cutoff=cutoff, match=Match(**f)
    )
    limit = f"${len(query.params) + 1}" if dialect == "pg" else "?"
    text = (
        f"SELECT {summary_columns()} FROM requests WHERE {query.where} ORDER BY {query.order} LIMIT {limit}"
    )
    return text, [*query.params, 51]


def explained(dialect: str, now: float) -> list[tuple[str, str, list[Any]]]:
    cutoff = now - 86400
    out = [
        (name, *list_sql(dialect, cutoff, **f))
        for name, f in (
            ("list page 1", {}),
            ("status=failed", {"status": "failed"}),
            ("agent", {"agent": "agent-3"}),
            ("kind", {"kind": "schedule"}),
            ("status+agent", {"status": "failed", "agent": "agent-3"}),
            ("user_id", {"user_id": "u42"}),
            ("since", {"since": now - 3600}),
        )
    ]
    mark = pg_mark if dialect == "pg" else (lambda _n, _t: "?")
    deliveries, params = q.deliveries_query("failed", 50, None, mark)
    out += [
        ("overview counts", q.COUNTS, []),
        ("overview oldest", q.OLDEST, []),
        ("overview running", q.RUNNING, []),
        ("overview leases", q.BY_WORKER, []),
        ("overview minutes", q.PG_MINUTES if dialect == "pg" else q.SQLITE_MINUTES, [int(now) - 3600]),
        (
            "overview deliveries",
            q.PG_DELIVERY_HEALTH if dialect == "pg" else q.SQLITE_DELIVERY_HEALTH,
            [now - 3600],
        ),
        ("failed deliveries", deliveries, params),
    ]
    return out


def full_scan(plan: str) -> bool:
    return "Seq Scan on requests" in plan or any(
        line.strip().startswith("SCAN requests") and "INDEX" not in line for line in plan.split(" | ")
    )


def seed_sqlite(path: Path, rows: int, now: float) -> tuple[float, float, list[dict[str, Any]]]:
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    with conn:
        for statement in statements(SQLITE, rows, now):
            conn.execute(statement)
    conn.execute("ANALYZE")
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute(COUNT_SCAN).fetchall()
    scan = (time.perf_counter() - started) * 1000
    plans = []
    for name, text, params in explained("sqlite", now):
        plan = " | ".join(str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {text}", params).fetchall())
        plans.append({"query": name, "plan": plan, "full_scan": full_scan(plan)})
    conn.close()
    return seeded, scan, plans


async def seed_postgres(url: str, rows: int, now: float) -> tuple[float, float, list[dict[str, Any]]]:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            for statement in statements(POSTGRES, rows, now):
                await conn.execute(statement)
        await conn.execute("VACUUM ANALYZE")
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        await conn.fetch(COUNT_SCAN)
        scan = (time.perf_counter() - started) * 1000
        plans = []
        for name, text, params in explained("pg", now):
            found = await conn.fetch(f"EXPLAIN {text}", *params)
            plan = " | ".join(str(r[0]).strip() for r in found)
            plans.append({"query": name, "plan": plan, "full_scan": full_scan(plan)})
        return seeded, scan, plans
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(folder: Path, url: str) -> Iterator[str]:
    """A real `errand serve --no-workers` on the seeded database (nothing claims the queue)."""
    data = {
        "name": "bench",
        "keys": {"admin": [ADMIN]},
        "storage": {"url": url},
        "agents": [{"id": "agent-0", "handler": "bench_agents:noop"}],
        "logging": {"level": "warning", "access_log": False},
    }
    config = folder / "formation.yaml"
    config.write_text(yaml.safe_dump(data))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{BENCH}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with (folder / "serve.log").open("ab") as log:
        proc = subprocess.Popen(
            [ERRAND, "serve", "--config", str(config), "--port", str(port), "--no-workers"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"errand serve did not start: {(folder / 'serve.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def time_pages(base: str, calls: int, now: float) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=base, headers={"X-Muxi-Admin-Key": ADMIN}, timeout=60) as c:
        cursor = None
        for _ in range(20):  # walk to page 21 once; its cursor is what is timed
            cursor = c.get(
                "/v1/requests", params={"limit": 50, **({"cursor": cursor} if cursor else {})}
            ).json()["next_cursor"]
        for name, path, params in PAGES:
            filled = {k: str(v).format(hour_ago=now - 3600, cursor=cursor) for k, v in params.items()}
            for _ in range(2):
                c.get(path, params=filled).raise_for_status()
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                r = c.get(path, params=filled)
                times.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
            times.sort()
            out.append(
                {
                    "page": name,
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                    "max_ms": round(times[-1], 1),
                }
            )
    return out


def report(
    backend: str,
    rows: int,
    seeded: float,
    scan: float,
    pages: list[dict[str, Any]],
    plans: list[Any],
    first: float,
) -> None:
    floor = next(p["p50_ms"] for p in pages if p["page"].startswith("health"))
    for page in pages:
        print(
            json.dumps(
                {"backend": backend, "rows": rows, **page, "x_health": round(page["p50_ms"] / floor, 1)}
            )
        )
    overview = next(p for p in pages if p["page"] == "overview")
    print(
        json.dumps(
            {
                "backend": backend,
                "rows": rows,
                "seed_s": round(seeded, 1),
                "first_overview_after_load_ms": round(first, 1),
                "count_scan_ms": round(scan, 1),
                "overview_p50_ms": overview["p50_ms"],
                "count_scan_over_overview": round(scan / overview["p50_ms"], 1),
                "worst_p95_ms": max(p["p95_ms"] for p in pages),
                "under_300ms": all(p["p95_ms"] < 300 for p in pages),
            }
        )
    )
    for plan in plans:
        print(json.dumps({"backend": backend, **plan}))


async def migrated(url: str) -> None:
    store = await open_store(url, clock=SystemClock(), migrate=True)
    await store.close()


async def first_overview(url: str) -> float:
    """The first overview read after the load: it sums the load's count rows (one per seeded
    request), then folds them. Then the fold's dead rows are vacuumed, as autovacuum would soon
    do, so the timed reads see the steady state (a few hundred count rows)."""
    store = await open_store(url, clock=SystemClock(), migrate=False)
    try:
        started = time.perf_counter()
        await store.overview()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        await store.close()
    if url.startswith("postgresql"):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM ANALYZE request_counts")
        finally:
            await conn.close()
    return elapsed


def run_sqlite(rows: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(migrated(url))
        now = time.time()
        seeded, scan, plans = seed_sqlite(Path(tmp) / "bench.db", rows, now)
        first = asyncio.run(first_overview(url))
        with serving(Path(tmp), url) as base:
            pages = time_pages(base, calls, now)
        report("sqlite", rows, seeded, scan, pages, plans, first)


def run_postgres(admin_url: str, rows: int, calls: int) -> None:
    name = "errand_dashboard_bench"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(migrated(url))
        now = time.time()
        seeded, scan, plans = asyncio.run(seed_postgres(url, rows, now))
        first = asyncio.run(first_overview(url))
        with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp), url) as base:
            pages = time_pages(base, calls, now)
        report("postgres", rows, seeded, scan, pages, plans, first)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        if backend == "sqlite":
            run_sqlite(args.rows, args.calls)
        elif backend == "postgres":
            run_postgres(args.pg, args.rows, args.calls)


if __name__ == "__main__":
    main()
