"""Handler agents the worker tests run (referenced as `tests.integration.agents_for_tests:NAME`).

Module-level state lets a test see what happened inside an agent; tests reset what they read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from errand.agents.base import RunContext
from errand.errors import TransientError

OBSERVED_CANCEL: dict[str, float] = {}
"""request id -> time.monotonic() when the agent saw it was stopped."""
GATES: dict[str, asyncio.Event] = {}
"""request id -> the gate its `gated` agent waits on (set it with `release`)."""
CONCURRENCY = {"now": 0, "peak": 0}


def _options(ctx: RunContext) -> dict[str, Any]:
    options: dict[str, Any] = ctx.metadata.get("agent_options") or {}
    return options


async def progress_steps(message: str, ctx: RunContext) -> dict[str, Any]:
    """Three progress steps and two content deltas, then an answer with extra fields."""
    for step in (1, 2, 3):
        ctx.progress(percent=step * 30, message=f"step {step}", step=step, total_steps=3)
        await ctx.checkpoint()
    ctx.emit("Hello, ")
    ctx.emit("world")
    return {"text": f"done: {message}", "usage": {"steps": 3}}


async def flaky(message: str, ctx: RunContext) -> str:
    """Transient failures until attempt `succeed_on` (default 3)."""
    succeed_on = int(_options(ctx).get("succeed_on", 3))
    if ctx.attempt < succeed_on:
        raise TransientError(f"provider busy (attempt {ctx.attempt})")
    return f"ok on attempt {ctx.attempt}"


async def always_transient(message: str, ctx: RunContext) -> str:
    raise TransientError(f"still down (attempt {ctx.attempt})")


async def permanent(message: str, ctx: RunContext) -> str:
    raise ValueError(f"cannot parse {message!r}")


async def slow(message: str, ctx: RunContext) -> str:
    """Sleep `seconds` (option), counting how many run at once."""
    CONCURRENCY["now"] += 1
    CONCURRENCY["peak"] = max(CONCURRENCY["peak"], CONCURRENCY["now"])
    try:
        await asyncio.sleep(float(_options(ctx).get("seconds", 0.1)))
    finally:
        CONCURRENCY["now"] -= 1
    return "slept"


async def cancellable(message: str, ctx: RunContext) -> str:
    """Runs until stopped; records when it observed the stop (CancelledError or checkpoint)."""
    ctx.progress(percent=1, message="running")
    try:
        while True:
            await asyncio.sleep(0.01)
            await ctx.checkpoint()
    except BaseException:
        OBSERVED_CANCEL[ctx.request_id] = time.monotonic()
        raise


def sync_cancellable(message: str, ctx: RunContext) -> str:
    """A blocking sync handler that polls ctx.cancelled from its thread."""
    ctx.progress(percent=1, message="running in a thread")
    while not ctx.cancelled:
        time.sleep(0.01)
    OBSERVED_CANCEL[ctx.request_id] = time.monotonic()
    return "stopped"


async def gated(message: str, ctx: RunContext) -> str:
    """Reports that it started, then waits until the test releases it."""
    ctx.progress(percent=1, message="waiting for the gate")
    try:
        await GATES.setdefault(ctx.request_id, asyncio.Event()).wait()
    except BaseException:
        OBSERVED_CANCEL[ctx.request_id] = time.monotonic()
        raise
    return f"released at attempt {ctx.attempt}"


def release(request_id: str) -> None:
    """Let the `gated` agent of this request return (before or after it started)."""
    GATES.setdefault(request_id, asyncio.Event()).set()


def sync_handler(message: str, ctx: RunContext) -> dict[str, Any]:
    """A plain function: runs in a worker thread and reports progress from there."""
    time.sleep(0.02)  # blocking on purpose: must not block the event loop
    ctx.progress(percent=50, message="halfway, from a thread")
    return {"text": message.upper(), "thread": threading.current_thread().name}


async def raises_cancelled(message: str, ctx: RunContext) -> str:
    """A buggy agent raising CancelledError on its own (nobody cancelled the attempt)."""
    raise asyncio.CancelledError


def sync_slow(message: str, ctx: RunContext) -> str:
    """A blocking handler that outlives the task timeout and stops when it sees ctx.cancelled."""
    started = time.monotonic()
    while not ctx.cancelled and time.monotonic() - started < 10:
        time.sleep(0.01)
    OBSERVED_CANCEL[ctx.request_id] = time.monotonic()
    return "gave up"
