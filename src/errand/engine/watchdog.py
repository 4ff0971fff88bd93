"""The loop watchdog: log who blocks the event loop, with their stack, so agent authors learn why.

An inline `async def` agent that calls time.sleep, a CPU loop or blocking I/O stops every other
request of the process, its lease renewals and (under `errand serve`) the HTTP API. The loop
sets a heartbeat every `interval`; a thread checks it and, once it is `threshold` seconds old,
logs one WARNING naming the task running (an attempt task is named after its request), the
requests in flight and the loop thread's stack (sys._current_frames), then one more when the
loop runs again. It observes only: the cure is `await`, a sync handler, or `isolation: process`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import TracebackType

__all__ = ["LoopWatchdog"]

log = logging.getLogger("errand.watchdog")

_STACK_FRAMES = 16
"""The innermost frames logged: the blocking call and its callers, not the CLI's entry."""


class LoopWatchdog:
    """`with LoopWatchdog(threshold, running):` inside the loop to watch; threshold 0: off."""

    def __init__(self, threshold: float, running: Callable[[], list[str]], *, interval: float = 0.1) -> None:
        self.threshold = threshold
        self.interval = interval
        self._running = running
        self._stop = threading.Event()
        self._beat = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LoopWatchdog:
        if self.threshold <= 0:
            return self
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        self._tick()
        self._thread = threading.Thread(target=self._watch, name="errand-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join()

    def _tick(self) -> None:
        assert self._loop is not None
        self._beat = time.monotonic()
        self._handle = self._loop.call_later(self.interval, self._tick)

    def _watch(self) -> None:
        blocked_since: float | None = None
        while not self._stop.wait(self.interval):
            beat = self._beat
            lag = time.monotonic() - beat
            if blocked_since is None and lag >= self.threshold:
                blocked_since = beat
                self._report(lag)
            elif blocked_since is not None and beat > blocked_since:
                log.warning("event loop ran again after being blocked for %.1fs", beat - blocked_since)
                blocked_since = None

    def _report(self, lag: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame, _STACK_FRAMES)) if frame is not None else "(none)"
        task = asyncio.current_task(self._loop) if self._loop is not None else None
        try:
            running = ", ".join(self._running()) or "none"
        except RuntimeError:  # the loop moved on while we read
            running = "unknown"
        log.warning(
            "event loop blocked for %.1fs by task %s; requests running: %s. An inline agent must not "
            "block (await instead, make it a plain def, or set `isolation: process`). "
            "Stack of the loop thread:\n%s",
            lag,
            task.get_name() if task is not None else "(none: a callback)",
            running,
            stack.rstrip(),
        )
