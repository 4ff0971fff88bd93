"""Agents for bench/sse_bench.py and bench/estimate_bench.py (on PYTHONPATH as `live_agents`).

- `deltas`: `n` content deltas as fast as it can (a model streaming tokens), yielding to the loop
  every 50 so the event writer can run; the text is "0 1 2 ... n-1 " so a reader can check it.
- `ticks`: `n` progress reports (never merged, so each one is a stored event and an SSE message).
- `park`: sits silent for `seconds` (a request that stays running while streams are held open).
- `modelled`: sleeps `modelled_s * jitter / scale` (from the request metadata): a workload whose
  true duration the estimate benchmark knows.
"""

from __future__ import annotations

import asyncio
from typing import Any


def _meta(ctx: Any) -> dict[str, Any]:
    meta: dict[str, Any] = ctx.metadata
    return meta


async def deltas(message: str, ctx: Any) -> str:
    n = int(_meta(ctx).get("n", 1000))
    for i in range(n):
        ctx.emit(f"{i} ")
        if i % 50 == 49:
            await asyncio.sleep(0)
    return f"emitted {n}"


async def ticks(message: str, ctx: Any) -> str:
    n = int(_meta(ctx).get("n", 1000))
    for i in range(1, n + 1):
        ctx.progress(percent=100.0 * i / n, step=i, total_steps=n)
        if i % 10 == 0:
            await asyncio.sleep(0)
    return f"ticked {n}"


async def park(message: str, ctx: Any) -> str:
    await asyncio.sleep(float(_meta(ctx).get("seconds", 60)))
    return "parked"


async def modelled(message: str, ctx: Any) -> str:
    meta = _meta(ctx)
    seconds = float(meta["modelled_s"]) * float(meta.get("jitter", 1.0)) / float(meta.get("scale", 1.0))
    await asyncio.sleep(seconds)
    return f"took {seconds:.3f}s"
