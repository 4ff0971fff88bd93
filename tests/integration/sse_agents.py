"""Handler agents for the event-stream tests (`tests.integration.sse_agents:NAME` in formations).

They are steered by the request's metadata, so one formation serves every test:
`ticks` progress reports (and a content delta each) `interval` seconds apart; `hold` waits, silent,
until the file `release` names exists -- a request that stays running as long as a test needs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from errand.agents.base import RunContext


async def ticker(message: str, ctx: RunContext) -> str:
    """`ticks` (default 10) progress events and content deltas, `interval` (default 0.02) s apart."""
    ticks = int(ctx.metadata.get("ticks", 10))
    interval = float(ctx.metadata.get("interval", 0.02))
    for step in range(1, ticks + 1):
        ctx.progress(percent=100.0 * step / ticks, message=f"tick {step}", step=step, total_steps=ticks)
        ctx.emit(f"<{step}>")
        await asyncio.sleep(interval)
        await ctx.checkpoint()
    return f"ticked {ticks}"


def _released(gate: Path) -> bool:
    return gate.exists()  # a stat of a local file: too quick to need a thread


async def hold(message: str, ctx: RunContext) -> str:
    """Emit nothing until the file named by metadata `release` exists (checked every 20 ms)."""
    gate = Path(str(ctx.metadata["release"]))
    while not _released(gate):
        await asyncio.sleep(0.02)
        await ctx.checkpoint()
    ctx.progress(percent=100, message="released")
    return "released"
