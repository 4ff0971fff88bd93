"""The handler agents (and the one tool) every test formation names: `tests.support.agents:NAME`.

Module-level state lets a test see what happened inside an agent; tests reset what they read.
Agents are steered by `ctx.metadata` (the API and stream tests) or by their `options` (the
worker tests, as `ctx.metadata["agent_options"]`), so one formation serves many tests:
  worker tests   progress_steps, flaky, always_transient, permanent, slow, cancellable,
                 sync_cancellable, gated (+ release), sync_handler, raises_cancelled, sync_slow
  API tests      echo, slow_steps, fail
  stream tests   ticker, hold
  console tests  steady, broken, asks_text (and asker)
  LLM tests      add (a tool: `tools: ["tests.support.agents:add"]`)
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from errand.agents.base import RunContext
from errand.errors import PermanentError, TransientError

OBSERVED_CANCEL: dict[str, float] = {}
"""request id -> time.monotonic() when the agent saw it was stopped."""
GATES: dict[str, asyncio.Event] = {}
"""request id -> the gate its `gated` agent waits on (set it with `release`)."""
CONCURRENCY = {"now": 0, "peak": 0}


# -- worker tests


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


# -- API tests: `slow_steps` reads `seconds` and `marker` from the request metadata: it appends
# `started` to the marker file, reports progress, and appends `finished` only if it ran to the
# end, or `stopped` when it was cancelled -- so a test can prove a cancelled attempt really stopped.


def _mark(ctx: RunContext, what: str) -> None:
    marker = ctx.metadata.get("marker")
    if marker:
        with Path(marker).open("a", encoding="utf-8") as f:
            f.write(what + "\n")


def echo(message: str, ctx: RunContext) -> dict[str, Any]:
    """Instant: echoes the message (a plain function: the registry runs it in a thread)."""
    ctx.progress(percent=100, message="echoed", step=1, total_steps=1)
    return {"text": f"echo: {message}", "user": ctx.user_id}


async def slow_steps(message: str, ctx: RunContext) -> str:
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


# -- stream tests: `ticks` progress reports (and a content delta each) `interval` seconds apart;
# `hold` waits, silent, until the file `release` names exists -- a request that stays running
# as long as a test needs.


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


# -- console (browser) tests: `steady` reports progress in proportion to the time it has run, so
# a watcher sees the bar move; `broken` fails with a real, several-frame traceback.


async def steady(message: str, ctx: RunContext) -> str:
    """Runs `metadata.seconds` (default 20), reporting `percent` = elapsed / seconds every 0.2 s,
    with a content delta each second; stops at once when cancelled."""
    seconds = float(ctx.metadata.get("seconds", 20.0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    while (elapsed := loop.time() - start) < seconds:
        ctx.progress(percent=round(100.0 * elapsed / seconds, 1), message=f"{elapsed:.0f} of {seconds:.0f} s")
        if tick % 5 == 0:
            ctx.emit(f"[{tick // 5}]")
        tick += 1
        await asyncio.sleep(0.2)
        await ctx.checkpoint()
    return f"steady: {message}"


def _parse_amount(text: str) -> float:
    return float(text.split("=", 1)[1])


async def broken(message: str, ctx: RunContext) -> str:
    """Fails permanently with a ValueError raised two frames down (a traceback to show)."""
    return f"total {_parse_amount('amount=' + message)}"


# -- LLM tests


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


# -- human input tests (ctx.ask)

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
ASK_RUNS: dict[str, int] = {}
"""request id -> how many times `asker` started (it runs again from the start once answered)."""
ASK_EFFECTS: dict[str, list[str]] = {}
"""request id -> the side effects `asker` made, each once: its code before `ask` is idempotent."""


async def asker(message: str, ctx: RunContext) -> dict[str, Any]:
    """Asks for a name (NAME_SCHEMA), then, with metadata `count`, how many; greets with both.

    Steered by metadata: `ask_timeout` (seconds), `on_timeout` (fail|cancel), `count` (a second
    question). Before its first ask it records an effect keyed by request id, once however
    often it is resumed: the idempotent pre-ask code the docs ask for."""
    ASK_RUNS[ctx.request_id] = ASK_RUNS.get(ctx.request_id, 0) + 1
    effects = ASK_EFFECTS.setdefault(ctx.request_id, [])
    if "prepared" not in effects:
        effects.append("prepared")
    meta = ctx.metadata
    answer = await ctx.ask(
        "What is your name?",
        schema=NAME_SCHEMA,
        timeout=meta.get("ask_timeout"),
        on_timeout=meta.get("on_timeout", "fail"),
    )
    text = f"hello {answer['name']} ({message})"
    if meta.get("count"):
        n = await ctx.ask("How many?", schema={"type": "integer", "minimum": 1})
        text += f" x{n}"
    return {"text": text, "inputs": list(ctx.inputs)}


async def asks_text(message: str, ctx: RunContext) -> dict[str, Any]:
    """Asks one free-text question (no schema; metadata `ask_timeout` seconds), echoes the answer."""
    answer = await ctx.ask("Which colour should the report be?", timeout=ctx.metadata.get("ask_timeout"))
    return {"text": f"{message}: {answer}"}


def sync_asker(message: str, ctx: RunContext) -> dict[str, Any]:
    """`asker` as a plain `def` (a worker thread, or an `isolation: process` child): a blocking
    `ctx.ask`, two questions, the second keeping `state`; answers with what it got back."""
    name = ctx.ask("What is your name?", schema=NAME_SCHEMA)
    n = ctx.ask("How many?", schema={"type": "integer", "minimum": 1}, state={"asked": "count"})
    return {
        "text": f"hello {name['name']} x{n} ({message})",
        "inputs": list(ctx.inputs),
        "kept": ctx.input_state,
    }
