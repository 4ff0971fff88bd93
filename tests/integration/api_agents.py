"""Python handler agents for the API integration tests (named in the test formation's config).

`slow` reads `seconds` and `marker` from the request metadata: it appends `started` to the
marker file, reports progress, and appends `finished` only if it ran to the end, or `stopped`
when it was cancelled -- so a test can prove a cancelled attempt really stopped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from errand.agents.base import RunContext
from errand.errors import PermanentError


def _mark(ctx: RunContext, what: str) -> None:
    marker = ctx.metadata.get("marker")
    if marker:
        with Path(marker).open("a", encoding="utf-8") as f:
            f.write(what + "\n")


def echo(message: str, ctx: RunContext) -> dict[str, Any]:
    """Instant: echoes the message (a plain function: the registry runs it in a thread)."""
    ctx.progress(percent=100, message="echoed", step=1, total_steps=1)
    return {"text": f"echo: {message}", "user": ctx.user_id}


async def slow(message: str, ctx: RunContext) -> str:
    """Runs `metadata.seconds` (default 2) in small steps, reporting progress."""
    seconds = float(ctx.metadata.get("seconds", 2.0))
    _mark(ctx, "started")
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    try:
        step = 0
        while loop.time() < end:
            step += 1
            ctx.progress(
                percent=min(99.0, step * 5.0), message=f"working step {step}", step=step, total_steps=20
            )
            await asyncio.sleep(0.02)
            await ctx.checkpoint()
    except BaseException:
        _mark(ctx, "stopped")
        raise
    _mark(ctx, "finished")
    return f"slow: {message}"


async def fail(message: str, ctx: RunContext) -> str:
    """Fails at once, permanently."""
    raise PermanentError(f"cannot do {message!r}")
