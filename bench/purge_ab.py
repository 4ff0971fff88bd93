"""The purge under submits, A/B (issue 11 item 7 d): backlog_bench.py's `purge` that also
reports the WAL's size after the purge, load1 around the run, and the code it ran (the `errand`
package imported, so PYTHONPATH can point at another worktree's src), as one line.

    PYTHONPATH=/work/wt/purge-base/src python bench/purge_ab.py purge --rows 200000 --refill 0

`windows` (bench/purge_windows.py): the same purge switched on and off in alternating windows
under steady submits, each "on" window compared with the "off" one before it:

    python bench/purge_ab.py windows --storage sqlite --rows 200000 --window 5 --windows 40
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from pathlib import Path

from backlog_bench import fill_expired, p99, run_purge, submit_slices, wal_size_mb
from backlog_fill import DAY, Database, new

__all__ = ["DAY", "Database", "fill_expired", "new", "submit_slices", "wal_size_mb"]


async def bench_purge(storage: str, rows: int, seconds: float, rate: float, refill: int) -> None:
    """backlog_bench's purge, printed as one table line with the WAL's size, load1 and the code."""
    import errand

    db = Database(storage)
    load1 = os.getloadavg()[0]
    run = await run_purge(db, rows, seconds, rate, refill)
    before, during = run.before, run.during
    print(
        f"| {Path(errand.__file__).parents[2].name} | {storage} | {rows:,} | {p99(before):.1f} / {p99(during):.1f}"
        f" | {p99(during) / p99(before):.2f}x"
        f" | {statistics.median(before) * 1000:.1f} / {statistics.median(during) * 1000:.1f}"
        f" | {run.purged / run.purge_s:,.0f} rows/s ({run.purge_s:.1f} s) | {run.filled:.0f} -> {run.after_purge:.0f} MB"
        f" | {run.wal_after:.1f} MB | {run.refilled:.0f} MB | {load1:.2f} -> {os.getloadavg()[0]:.2f} |",
        flush=True,
    )
    await db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["purge", "windows"])
    parser.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
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
    else:
        refill = args.rows if args.refill is None else args.refill
        asyncio.run(bench_purge(args.storage, args.rows, args.seconds, args.rate, refill))


if __name__ == "__main__":
    main()
