"""A SQLite purge that keeps its tombstones (tombstone_ttl 10 days, as in production), no submits:
the time it takes, to see whether each chunk walks past the tombstones made so far (quadratic).

    PYTHONPATH=/work/wt/purge-base/src python bench/purge_kept_tombstones.py 200000
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import purge_ab as ab

import errand


async def main(rows: int) -> None:
    db = ab.Database("sqlite")
    store = await db.open()  # migrates
    await store.close()
    await ab.fill_expired(db, rows)
    store = await db.open()
    started = time.perf_counter()
    purged = await store.purge_expired(ab.DAY, 10 * ab.DAY)
    seconds = time.perf_counter() - started
    await store.close()
    code = Path(errand.__file__).parents[2].name
    print(
        f"{code}: {rows:,} rows, {purged:,} tombstoned in {seconds:.1f} s ({purged / seconds:,.0f}/s);"
        f" load1 {os.getloadavg()[0]:.2f}"
    )
    shutil.rmtree(db.folder)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
