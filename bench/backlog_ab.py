"""Backlog cost as interleaved A/B windows (issue 11 item 7 c, b), at the store, both backends.

  submit-ab: an empty store ("small") beside one bulk-loaded with `--rows` rows ("big"); short
             windows of `--concurrency` submits (half keyed, no workers: every row stays) on each
             in turn. Target: big's throughput >= 85 % of small's (ratio of the medians).
  drain-ab:  a `--small` backlog beside a `--rows` backlog (pending, DRAIN_USERS users), each
             refilled to its size before every window; a window claims and finishes `--window`
             requests (CLAIMERS claimers x CLAIM_BATCH, fair claiming). Target: big >= 85 % of small.
  fair-ab:   one `--small` backlog, windows of fair and FIFO claiming in turn, refilled before each.
             Target: fair >= 90 % of FIFO.

Sliced runs (the `submit` mode) cannot tell the row count from the machine's load, which changed
during every run so far; here both sides take turns within a minute, so drift weighs on both.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from ab_windows import Measure, alternate, report
from backlog_fill import Database, Templates, fill_pg, fill_sqlite, key, make_templates, new, stash_templates

from errand.models import Limits, Result, Status
from errand.store.base import Store

CLAIMERS, CLAIM_BATCH, DRAIN_USERS = 2, 64, 10
"""As fairness_bench's drain."""


def sqlite_cache(mb: int) -> None:
    """An experiment, not a setting of errand: every SQLite connection the store opens gets a page
    cache of `mb` MB (PRAGMA cache_size; SQLite's default, which the store keeps, is 2 MB)."""
    from errand.store.sqlite import connections, upkeep

    plain = connections.connect

    def connect(path: str, **options: Any) -> sqlite3.Connection:
        conn = plain(path, **options)
        conn.execute(f"PRAGMA cache_size = -{mb * 1024}")
        return conn

    setattr(upkeep, "connect", connect)  # noqa: B010 (the name upkeep calls at every connect)


async def fill(
    db: Database, parts: list[tuple[str, int]], users: int, first: int, analyze: bool = True
) -> None:
    if db.storage == "sqlite":
        await asyncio.to_thread(fill_sqlite, str(db.path), parts, users, first, analyze=analyze)
    else:
        await fill_pg(db.url, parts, users, first, analyze=analyze)


async def prepared(db: Database) -> Templates:
    """A migrated database, its two templates stashed (see `stash_sql`)."""
    await db.create()
    store = await db.open()
    try:
        templates = await make_templates(store)
    finally:
        await store.close()
    await stash_templates(db, templates)
    return templates


def submit_window(store: Store, seconds: float, concurrency: int, counter: Iterator[int]) -> Measure:
    async def measure() -> tuple[int, float, list[float]]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                n = next(counter)
                started = time.perf_counter()
                await store.submit(new(n), key(n))
                latencies.append(time.perf_counter() - started)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return len(latencies), time.perf_counter() - t0, latencies

    return measure


async def bench_submit_ab(args: argparse.Namespace) -> None:
    rows, pending, seconds, rounds, concurrency, storage = (
        getattr(args, n) for n in ("rows", "pending", "window_seconds", "rounds", "concurrency", "storage")
    )
    if getattr(args, "sqlite_cache_mb", None):
        sqlite_cache(args.sqlite_cache_mb)
    small, big = Database(storage), Database(storage)
    await prepared(small)
    t = await prepared(big)
    t0, queued = time.perf_counter(), int(rows * pending)
    await fill(big, [(t.completed, rows - queued), (t.pending, queued)], 100, 0)
    print(f"filled {rows:,} rows ({queued:,} pending) in {time.perf_counter() - t0:.0f} s", flush=True)
    stores = {"small": await small.open(), "big": await big.open()}
    try:
        counters = {name: itertools.count() for name in stores}
        sides = {n: submit_window(s, seconds, concurrency, counters[n]) for n, s in stores.items()}
        for name, store in stores.items():  # warm-up, not reported
            await submit_window(store, 1.0, concurrency, counters[name])()
        windows = await alternate(sides, rounds)
    finally:
        for store in stores.values():
            await store.close()
    title = f"submit-ab, {storage}: empty vs {rows:,} rows, {seconds:g} s windows, {concurrency} concurrent"
    ratios = report(title, windows, "small", "big", "submit")
    print(f"\nbig/small throughput {ratios['per_s']:.1%} (target >= 85 %)")
    await finish(small, big)


async def finish(*dbs: Database) -> None:
    for db in dbs:
        print(f"{db.url}: rows {await db.counts()}, {await db.size_mb():.0f} MB")
        await db.drop()


def drain_window(store: Store, limits: Limits, target: int) -> Measure:
    """Claim and finish until `target` are done; the latencies are the claim calls'."""

    async def measure() -> tuple[int, float, list[float]]:
        done, latencies = [0], []

        async def claimer(worker: str) -> None:
            while done[0] < target:
                started = time.perf_counter()
                claims = await store.claim(worker, CLAIM_BATCH, 30.0, limits)
                latencies.append(time.perf_counter() - started)
                if not claims:  # the backlog ran dry (only if it held fewer than `target`)
                    break
                await asyncio.gather(
                    *(
                        store.finish(c.request.id, c.attempt, Status.COMPLETED, result=Result("ok"))
                        for c in claims
                    )
                )
                done[0] += len(claims)

        t0 = time.perf_counter()
        await asyncio.gather(*(claimer(f"w{i}") for i in range(CLAIMERS)))
        return done[0], time.perf_counter() - t0, latencies

    return measure


class Backlog:
    """A store with a pending backlog of `size`, refilled (untimed) to it before each window."""

    def __init__(self, db: Database, template: Templates, size: int) -> None:
        self.db, self.template, self.size = db, template, size
        self.store: Store | None = None
        self.made = 0

    async def start(self) -> Store:
        await self.refill()
        self.store = await self.db.open()
        return self.store

    async def refill(self) -> None:
        missing = self.size - await self.db.pending()
        if missing > 0:
            await fill(
                self.db, [(self.template.pending, missing)], DRAIN_USERS, self.made, analyze=self.made == 0
            )
            self.made += missing


async def bench_drain_ab(args: argparse.Namespace, fair_vs_fifo: bool) -> None:
    storage, big_rows, small_rows, target, rounds = (
        getattr(args, n) for n in ("storage", "rows", "small", "window", "rounds")
    )
    sizes = {"small": small_rows} if fair_vs_fifo else {"small": small_rows, "big": big_rows}
    backlogs = {}
    for name, size in sizes.items():
        db = Database(storage)
        backlogs[name] = Backlog(db, await prepared(db), size)
        t0 = time.perf_counter()
        await backlogs[name].start()
        print(f"{name}: {size:,} pending in {time.perf_counter() - t0:.0f} s", flush=True)
    try:
        if fair_vs_fifo:
            shared = backlogs["small"].store
            assert shared is not None
            sides = {
                "fifo": drain_window(shared, Limits(fair=False), target),
                "fair": drain_window(shared, Limits(), target),
            }
            backlog_of = {"fifo": backlogs["small"], "fair": backlogs["small"]}
        else:
            sides = {
                n: drain_window(b.store, Limits(), target) for n, b in backlogs.items() if b.store is not None
            }
            backlog_of = backlogs
        for name, measure in sides.items():  # warm-up, not reported
            await backlog_of[name].refill()
            await measure()

        async def between(side: str) -> None:
            await backlog_of[side].refill()

        windows = await alternate(sides, rounds, between)
    finally:
        for b in backlogs.values():
            if b.store is not None:
                await b.store.close()
    if fair_vs_fifo:
        title = f"fair-ab, {storage}: fair vs FIFO drain of {target:,} from a {small_rows:,} backlog"
        ratios = report(title, windows, "fifo", "fair", "claim call")
        print(f"\nfair/FIFO drain {ratios['per_s']:.1%} (target >= 90 %)")
    else:
        title = f"drain-ab, {storage}: {target:,} claimed and finished from {small_rows:,} vs {big_rows:,} pending"
        ratios = report(title, windows, "small", "big", "claim call")
        print(f"\nbig/small drain {ratios['per_s']:.1%} (target >= 85 %)")
    await finish(*(b.db for b in backlogs.values()))
