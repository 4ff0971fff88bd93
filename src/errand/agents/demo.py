"""An OFFLINE demo agent that pretends to research a question. It does no real research.

It exists to show errand's async machinery without an API key: several seconds of "work" in
named steps, progress reports, content deltas, and cooperative cancellation. Every source and
finding in its answer is a placeholder and says so. Use it as `handler: errand.agents.demo:run`;
`options: {step_seconds: 0.2}` makes it faster (default 0.6 s per step, about 4 s in all).
"""

from __future__ import annotations

import asyncio
from typing import Any

from errand.agents.base import RunContext

__all__ = ["STEPS", "run"]

STEPS: tuple[str, ...] = (
    "Planning the research",
    "Searching source 1 of 3",
    "Searching source 2 of 3",
    "Searching source 3 of 3",
    "Analyzing findings",
    "Writing report",
)
DEFAULT_STEP_SECONDS = 0.6


def _topic(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= 120 else text[:117] + "..."


def _report(topic: str) -> list[str]:
    """The answer, as the paragraphs it is streamed in."""
    return [
        f"# Research brief: {topic}\n\n",
        "_Demo output: errand's offline demo agent made this up; no sources were consulted._\n\n",
        "## Summary\n\n"
        f"The question was: **{topic}**. A real agent would answer it from the sources below.\n\n",
        "## Findings\n\n"
        "1. **Source 1 (placeholder)**: the overall picture and its main trade-offs.\n"
        "2. **Source 2 (placeholder)**: recent changes and the numbers behind them.\n"
        "3. **Source 3 (placeholder)**: the dissenting view, and where it disagrees.\n\n",
        "## Recommendation\n\n"
        "Compare the three findings against your own constraints, then confirm the figures with a "
        "real research agent (a `model:` agent) before relying on them.\n",
    ]


async def run(message: str, ctx: RunContext) -> dict[str, Any]:
    """Simulate a multi-step research task; cancellable between and during steps."""
    options = ctx.metadata.get("agent_options") or {}
    step_seconds = max(0.0, float(options.get("step_seconds", DEFAULT_STEP_SECONDS)))
    topic = _topic(message)
    total = len(STEPS)
    for number, label in enumerate(STEPS, start=1):
        await ctx.checkpoint()
        ctx.progress(percent=100.0 * (number - 1) / total, message=label, step=number, total_steps=total)
        if number < total:
            await asyncio.sleep(step_seconds)
    parts = _report(topic)
    for part in parts:
        ctx.emit(part)
        await asyncio.sleep(step_seconds / len(parts))
    await ctx.checkpoint()
    ctx.progress(percent=100.0, message="Done", step=total, total_steps=total)
    return {
        "text": "".join(parts),
        "demo": True,
        "sources": [f"placeholder://source-{i}" for i in (1, 2, 3)],
        "steps": list(STEPS),
    }
