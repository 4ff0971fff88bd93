"""Fair claiming, measured on both backends in one run, fair against FIFO (`limits.fair: false`).

(a) pickup: user "noisy" has NOISY requests queued; while a drain loop works through them,
    user "quiet" submits QUIET requests, one every 20 ms; pickup = started_at - created_at of
    each (the store's own timestamps; a quiet request not started after 120 s counts as 120 s). Target: quiet p50 <= 50 ms with fair claiming.
(b) drain: DRAIN_USERS users share a backlog; claimers (CLAIMERS tasks, CLAIM_BATCH each)
    claim and finish as fast as the store allows; requests/s, fair vs FIFO (target fair >= 90 %
    of FIFO; at the first size, the medians of REPEAT alternated runs each), and fair at each backlog size of SIZES (target: the largest >= 85 % of 5,000).
(b') claim only: one task claims CLAIM_BATCH at a time from the first size's backlog, finishing
    nothing, until CLAIM_ONLY are leased: the cost of one claim call, fair vs FIFO (the drain
    above also pays one finish transaction per request).

The backlog is bulk-loaded with SQL (setting it up through submit would take longer than the
measurement); the rows are exactly what submit writes for the claim (fairness_key, sort_key,
and one fair_keys row per user). Claims and finishes go through the real Store.

    .venv/bin/python bench/fairness_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--noisy 100000] [--sizes 5000,100000,500000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from errand.clock import SystemClock
from errand.models import Limits, NewRequest, Result, Status
from errand.store import open_store
from errand.store.base import Store
from errand.store.rules import REQUEST_COLUMNS

CLAIMERS, CLAIM_BATCH, QUIET, DRAIN_USERS, DRAINED, CLAIM_ONLY, REPEAT = 2, 64, 20, 10, 5000, 3000, 3
FAIR, FIFO = Limits(), Limits(fair=False)
LATER_COLUMNS = len(REQUEST_COLUMNS.split(",")) - 29
"""REQUEST_COLUMNS after trace_context (the input_* columns since migration 0014): NULL in a
pending row that never asked for input."""


def rows(n: int, users: int, start: float) -> list[tuple[Any, ...]]:
    """Bulk rows in REQUEST_COLUMNS order (trace_context, then the LATER_COLUMNS), then updated_at
    and sort_key (priority 3, aging 60)."""
    out = []
    for i in range(n):
        user = f"u{i % users}" if users > 1 else "noisy"
        t = start + i * 1e-6
        head = (
            f"b{i}",
            "bench",
            user,
            "chat",
            None,
            "x",
            None,
            "{}",
            None,
            None,
            "async",
            "pending",
            0,
            0,
            3,
        )
        out.append(
            (
                *head,
                None,
                None,
                None,
                t,
                None,
                None,
                t,
                None,
                1,
                None,
                3,
                f"bench/{user}",
                None,
                None,
                *[None] * LATER_COLUMNS,
                t,
                t + 120.0,
            )
        )
    return out


async def load_sqlite(path: str, data: list[tuple[Any, ...]]) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    marks = ", ".join("?" * len(data[0]))
    with conn:
        conn.executemany(
            f"INSERT INTO requests ({REQUEST_COLUMNS}, updated_at, sort_key) VALUES ({marks})", data
        )
        conn.execute(
            "INSERT INTO fair_keys SELECT DISTINCT fairness_key, 0 FROM requests WHERE status = 'pending' "
            "ON CONFLICT DO NOTHING"
        )
    conn.execute("ANALYZE")
    conn.close()


async def load_pg(url: str, data: list[tuple[Any, ...]]) -> None:
    conn = await asyncpg.connect(url)
    cols = [c.strip() for c in REQUEST_COLUMNS.split(",")] + ["updated_at", "sort_key"]
    await conn.copy_records_to_table("requests", records=data, columns=cols)
    await conn.execute(
        "INSERT INTO fair_keys SELECT DISTINCT fairness_key, 0 FROM requests WHERE status = 'pending' "
        "ON CONFLICT DO NOTHING"
    )
    await conn.execute("ANALYZE requests")
    await conn.close()


class Backend:
    def __init__(self, pg_admin: str | None) -> None:
        self.pg_admin = pg_admin
        self.tmp = Path(tempfile.mkdtemp(prefix="fairbench"))
        self.databases: list[str] = []

    async def fresh(self, data: list[tuple[Any, ...]]) -> Store:
        if self.pg_admin is None:
            path = str(self.tmp / f"{uuid.uuid4().hex}.db")
            store = await open_store(f"sqlite:///{path}", clock=SystemClock(), synchronous="normal")
            await store.close()
            await load_sqlite(path, data)
            return await open_store(f"sqlite:///{path}", clock=SystemClock(), synchronous="normal")
        name = f"fairbench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.pg_admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        self.databases.append(name)
        url = self.pg_admin.rsplit("/", 1)[0] + f"/{name}"
        store = await open_store(url, clock=SystemClock(), pool_size=10)
        await load_pg(url, data)
        return store

    async def drop(self) -> None:
        """Drop the databases this run made (their stores are closed by now)."""
        if self.pg_admin is None or not self.databases:
            return
        conn = await asyncpg.connect(self.pg_admin)
        for name in self.databases:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.close()
        self.databases.clear()


async def drain(
    store: Store, limits: Limits, stop: asyncio.Event, count: list[int], reached: asyncio.Event | None = None
) -> None:
    """Claim a batch, finish it, again, until `stop`; `reached` is set once count[1] are done."""
    while not stop.is_set():
        claims = await store.claim(f"w{id(count)}", CLAIM_BATCH, 30.0, limits)
        if not claims:
            await asyncio.sleep(0.001)
            continue
        await asyncio.gather(
            *(store.finish(c.request.id, c.attempt, Status.COMPLETED, result=Result("ok")) for c in claims)
        )
        count[0] += len(claims)
        if reached is not None and count[0] >= count[1]:
            reached.set()


async def pickup(backend: Backend, noisy: int, limits: Limits) -> list[float]:
    store = await backend.fresh(rows(noisy, 1, time.time() - 1))
    stop, count = asyncio.Event(), [0]
    loops = [asyncio.create_task(drain(store, limits, stop, count)) for _ in range(CLAIMERS)]
    await asyncio.sleep(0.5)  # draining at full speed
    for i in range(QUIET):  # one every 20 ms, not waiting for the previous one
        await store.submit(NewRequest(id=f"q{i}", owner="bench", user_id="quiet", message="x"))
        await asyncio.sleep(0.02)
    deadline, waits = time.time() + 120, []
    for i in range(QUIET):
        while True:
            got = await store.get(f"q{i}")
            if got.started_at is not None or time.time() > deadline:
                break
            await asyncio.sleep(0.01)
        waits.append(((got.started_at or time.time()) - got.created_at) * 1000)
    stop.set()
    await asyncio.gather(*loops)
    await store.close()
    return waits


async def throughput(backend: Backend, size: int, limits: Limits) -> float:
    """Requests/s claimed and finished while taking the first DRAINED of a `size` backlog."""
    store = await backend.fresh(rows(size, DRAIN_USERS, time.time() - 1))
    stop, reached, count = asyncio.Event(), asyncio.Event(), [0, min(size, DRAINED)]
    start = time.perf_counter()
    loops = [asyncio.create_task(drain(store, limits, stop, count, reached)) for _ in range(CLAIMERS)]
    await reached.wait()
    rate = count[0] / (time.perf_counter() - start)
    stop.set()
    await asyncio.gather(*loops)
    await store.close()
    return rate


async def claim_cost(backend: Backend, size: int, limits: Limits) -> float:
    """Milliseconds per claim call of CLAIM_BATCH rows (nothing finished) from a `size` backlog."""
    store = await backend.fresh(rows(size, DRAIN_USERS, time.time() - 1))
    calls, taken, start = 0, 0, time.perf_counter()
    while taken < min(size, CLAIM_ONLY):
        taken += len(await store.claim("w-claim-only", CLAIM_BATCH, 600.0, limits))
        calls += 1
    elapsed = time.perf_counter() - start
    await store.close()
    return 1000 * elapsed / calls


async def alternated(measure: Callable[[Limits], Awaitable[float]]) -> tuple[float, float]:
    """(fair, fifo): the medians of REPEAT runs each, fair and FIFO taking turns, so a change of
    the machine's load during the run (2 shared cores) weighs on both alike."""
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(REPEAT):
        for limits in (FAIR, FIFO):
            runs[limits.fair].append(await measure(limits))
    return statistics.median(runs[True]), statistics.median(runs[False])


async def drain_at_sizes(backend: Backend, sizes: list[int]) -> None:
    """(b) alone: fair drain at each backlog size in the order given (repeat the first at the
    end to see the load's drift), one run each, against the first."""
    first = 0.0
    for size in sizes:
        rate = await throughput(backend, size, FAIR)
        first = first or rate
        print(
            f"(b) fair drain at {size:,}: {rate:.0f}/s ({100 * rate / first:.0f} % of the first run)",
            flush=True,
        )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--noisy", type=int, default=100_000)
    ap.add_argument("--sizes", default="5000,100000,500000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--drain-only", action="store_true", help="only (b): fair drain at each size")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for name in args.backends.split(","):
        backend = Backend(None if name == "sqlite" else args.pg)
        print(f"== {name}")
        if args.drain_only:
            await drain_at_sizes(backend, sizes)
            await backend.drop()
            continue
        for label, limits in (("fair", FAIR), ("fifo", FIFO)):
            waits = await pickup(backend, args.noisy, limits)
            print(
                f"(a) {label}: quiet pickup behind {args.noisy:,} noisy: p50 {statistics.median(waits):.1f} ms, "
                f"p99 {pct(waits, 0.99):.1f} ms"
            )
        first = await alternated(functools.partial(throughput, backend, sizes[0]))
        fair = {sizes[0]: first[0], **{size: await throughput(backend, size, FAIR) for size in sizes[1:]}}
        print(
            f"(b) drain at {sizes[0]:,}: fair {first[0]:.0f}/s, fifo {first[1]:.0f}/s "
            f"({100 * first[0] / first[1]:.0f} %; medians of {REPEAT} alternated runs)"
        )
        for size in sizes[1:]:
            print(
                f"(b) fair drain at {size:,}: {fair[size]:.0f}/s ({100 * fair[size] / fair[sizes[0]]:.0f} % of {sizes[0]:,})"
            )
        fair_ms, fifo_ms = await alternated(functools.partial(claim_cost, backend, sizes[0]))
        print(
            f"(b') claim only, {CLAIM_BATCH} per call from {sizes[0]:,}: fair {fair_ms:.2f} ms/call, "
            f"fifo {fifo_ms:.2f} ms/call (fair costs {fair_ms / fifo_ms:.2f}x)"
        )
        await backend.drop()


if __name__ == "__main__":
    asyncio.run(main())
