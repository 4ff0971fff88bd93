"""Tiny built-in handlers for smoke tests and benchmarks: `echo` and `sleep`.

Use as `handler: errand.agents.builtin:echo`. They measure errand itself, not an agent.
"""

from __future__ import annotations

import asyncio

from errand.agents.base import RunContext

__all__ = ["echo", "sleep"]


async def echo(message: str, ctx: RunContext) -> str:
    """Answer with the message itself, at once."""
    return message


async def sleep(message: str, ctx: RunContext) -> str:
    """Sleep for the seconds the message names (e.g. "2.5"), else `options.seconds` (default 1)."""
    try:
        seconds = float(message)
    except ValueError:
        options = ctx.metadata.get("agent_options") or {}
        seconds = float(options.get("seconds", 1.0))
    await asyncio.sleep(max(0.0, seconds))
    return f"slept {seconds:g}s"
