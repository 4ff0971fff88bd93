"""Threads for sync user code (handlers, tools): the worker's own pool, and per attempt a group
that knows which of its threads still run.

asyncio's default pool (min(32, cpus + 4) threads) is shared with DNS lookups and anything
else that calls `asyncio.to_thread`: eight sleeping sync agents starved webhook URL checks and
the dispatcher, and capped `workers.concurrency` at the pool size. The worker therefore gives
agents a pool of their own, sized to its concurrency. A thread cannot be interrupted, so a
timed-out or cancelled attempt may leave one running; its ThreadGroup says so (`running`,
`idle()`), and the worker keeps that attempt's slot -- and holds back its retry -- until it
returns, so one request never executes twice at once in one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["AgentThreads", "ThreadGroup"]

QUEUE_REPORT_S = 0.01
"""A thread that started later than this after it was asked for reports the wait (on_start)."""


class ThreadGroup:
    """The threads one attempt started. Without a pool (tests, code outside a worker) sync
    functions run through `asyncio.to_thread` and nothing is tracked."""

    def __init__(self, pool: ThreadPoolExecutor | None = None) -> None:
        self._pool = pool
        self._running: set[Future[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.on_start: Callable[[float], None] | None = None
        """Called on the event loop with the seconds a thread waited for a free pool thread,
        so the task timeout can count from the handler's start (engine/attempt.py)."""

    @property
    def running(self) -> int:
        """Threads of this group not yet returned (queued or running)."""
        return len(self._running)

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) in a pool thread, with the caller's context variables. A cancel
        of the caller returns at once; the thread runs on and stays counted until it returns."""
        if self._pool is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        asked = time.monotonic()

        def body() -> Any:
            waited = time.monotonic() - asked
            if waited > QUEUE_REPORT_S and self.on_start is not None:
                loop.call_soon_threadsafe(self.on_start, waited)
            return fn(*args, **kwargs)

        future = self._pool.submit(contextvars.copy_context().run, body)
        self._running.add(future)
        self._idle.clear()
        future.add_done_callback(functools.partial(_on_loop, loop, self._returned))
        return await asyncio.wrap_future(future)

    def _returned(self, future: Future[Any]) -> None:
        self._running.discard(future)
        if not self._running:
            self._idle.set()

    async def idle(self) -> None:
        """Return once every thread of the group has returned."""
        await self._idle.wait()


def _on_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[[Future[Any]], None], f: Future[Any]
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
        loop.call_soon_threadsafe(callback, f)


class AgentThreads:
    """The pool of one worker: `size` threads (its concurrency), made on first use."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None

    def group(self) -> ThreadGroup:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="errand-agent")
        return ThreadGroup(self._pool)

    def shutdown(self) -> None:
        """Stop taking work and drop queued calls; running threads finish on their own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
