"""The purge's cost to submits, in alternating windows (issue 11 item 7 d): `purge_ab.py windows`.

Measuring p99 without the purge for 10 s and then p99 during it compares two stretches of a
shared machine whose load drifts in between (main against main gave 0.86x-3.08x). Here the
submits run at a steady pace the whole time, and the purge of the expired rows is switched on
and off in windows of a few seconds ("off": no purge; "on": `store.purge_expired` running, the
same code the server runs, cancelled at the window's end and started again in the next "on"
window, so it resumes where it stopped). Each "on" window is compared with the "off" window just
before it, so both saw nearly the same load. A short gap after each window (its latencies not
counted) lets a cancelled purge's last chunk finish and the rows left be counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from purge_ab import DAY, Database, fill_expired, new, submit_slices, wal_size_mb

from errand.store.base import Store

GAP = 0.5
"""Seconds between windows whose submits are not counted (a cancelled chunk ends, rows counted)."""
LEFT_ROWS = "SELECT count(*) FROM requests WHERE id >= 'old' AND id < 'olf'"
LEFT_KEYS = "SELECT count(*) FROM idempotency WHERE scope = 'bench:old:/v1/chat'"


@dataclass
class Window:
    kind: str
    start: float
    end: float = 0.0
    load1: float = 0.0
    purged: int = 0
    latencies: list[float] = field(default_factory=list)


async def left(db: Database) -> tuple[int, int]:
    """Expired requests and their keys not purged yet, read beside the store."""
    if db.storage == "sqlite":

        def count() -> tuple[int, int]:
            conn = sqlite3.connect(db.path)
            try:
                return int(conn.execute(LEFT_ROWS).fetchone()[0]), int(conn.execute(LEFT_KEYS).fetchone()[0])
            finally:
                conn.close()

        return await asyncio.to_thread(count)
    conn = await asyncpg.connect(db.url)
    try:
        return int(await conn.fetchval(LEFT_ROWS)), int(await conn.fetchval(LEFT_KEYS))
    finally:
        await conn.close()


async def steady_submits(
    store: Store, stop: asyncio.Event, rate: float, log: list[tuple[float, float]]
) -> None:
    """Submits at `rate`/s from 16 clients until stop; (start, latency) of each into log."""
    counter = iter(range(10**9))

    async def client() -> None:
        gap = 16 / rate
        while not stop.is_set():
            started = time.perf_counter()
            await store.submit(new(next(counter)), None)
            log.append((started, time.perf_counter() - started))
            await asyncio.sleep(max(0.0, gap - (time.perf_counter() - started)))

    await asyncio.gather(*(client() for _ in range(16)))


async def purge_for(store: Store, seconds: float) -> bool:
    """The purge run for `seconds` (then cancelled: it resumes on the next call); True if it ended."""
    task = asyncio.create_task(store.purge_expired(DAY, 0.0))
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def run_windows(db: Database, store: Store, seconds: float, cap: int, rate: float) -> list[Window]:
    """off, on, off, on... until nothing is left to purge or `cap` windows; submits all along."""
    log: list[tuple[float, float]] = []
    stop = asyncio.Event()
    submits = asyncio.create_task(steady_submits(store, stop, rate, log))
    windows: list[Window] = []
    remaining, keys = await left(db)
    try:
        while remaining + keys and len(windows) < cap:
            window = Window("on" if len(windows) % 2 else "off", time.perf_counter())
            if window.kind == "on":
                await purge_for(store, seconds)
            else:
                await asyncio.sleep(seconds)
            window.end, window.load1 = time.perf_counter(), os.getloadavg()[0]
            await asyncio.sleep(GAP)
            if window.kind == "on":
                now_left, keys = await left(db)
                window.purged, remaining = remaining - now_left, now_left
            windows.append(window)
    finally:
        stop.set()
        await submits
    for window in windows:
        window.latencies = [lat for started, lat in log if window.start <= started < window.end]
    return windows


def p99_ms(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000 if len(values) > 1 else float("nan")


def report(windows: list[Window]) -> tuple[float, float, float]:
    """The per-window table; returns (pooled p99 ratio, median per-pair ratio, purge rows/s)."""
    print(
        "| window | kind | submits | p50 ms | p99 ms | rows purged | load1 |\n|---|---|---|---|---|---|---|"
    )
    for n, w in enumerate(windows):
        p50 = statistics.median(w.latencies) * 1000 if w.latencies else float("nan")
        purged = f"{w.purged:,}" if w.kind == "on" else ""
        print(
            f"| {n} | {w.kind} | {len(w.latencies)} | {p50:.1f} | {p99_ms(w.latencies):.1f} | {purged} | {w.load1:.2f} |"
        )
    off = [lat for w in windows if w.kind == "off" for lat in w.latencies]
    on = [lat for w in windows if w.kind == "on" for lat in w.latencies]
    pairs = [
        p99_ms(b.latencies) / p99_ms(a.latencies)
        for a, b in zip(windows[::2], windows[1::2], strict=False)
        if len(a.latencies) > 1 and len(b.latencies) > 1
    ]
    on_seconds = sum(w.end - w.start for w in windows if w.kind == "on")
    rate = sum(w.purged for w in windows) / on_seconds if on_seconds else 0.0
    return p99_ms(on) / p99_ms(off), statistics.median(pairs) if pairs else float("nan"), rate


async def bench_windows(storage: str, rows: int, seconds: float, cap: int, rate: float, refill: int) -> None:
    db = Database(storage)
    await db.create()
    store = await db.open()  # migrates
    await store.close()
    started_at, load1 = time.strftime("%H:%M", time.gmtime()), os.getloadavg()[0]
    await fill_expired(db, rows)
    filled = await db.size_mb()
    store = await db.open()
    try:
        windows = await run_windows(db, store, seconds, cap, rate)
        remaining = sum(await left(db))
        after, wal_mb = await db.size_mb(), wal_size_mb(db)  # before close checkpoints it
        purged = sum(w.purged for w in windows)
        if refill and purged:  # as many new rows as were purged (-1) or `refill`: freed space reused?
            await submit_slices(store, purged if refill < 0 else refill, 10**9, 64)
        refilled = await db.size_mb()
    finally:
        await store.close()
    import errand

    pooled, pair, purge_rate = report(windows)
    print(
        "\n| code | storage | rows | windows | p99 on/off pooled | median per-pair | purge rate | left |"
        " size filled -> after (WAL) -> refilled | load1 | UTC |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    print(
        f"| {Path(errand.__file__).parents[2].name} | {storage} | {rows:,} | {len(windows)} x {seconds:g} s"
        f" | {pooled:.2f}x | {pair:.2f}x | {purge_rate:,.0f} rows/s | {remaining:,}"
        f" | {filled:.0f} -> {after:.0f} ({wal_mb:.1f}) -> {refilled:.0f} MB"
        f" | {load1:.2f} -> {os.getloadavg()[0]:.2f} | {started_at}-{time.strftime('%H:%M', time.gmtime())} |",
        flush=True,
    )
    await db.drop()
