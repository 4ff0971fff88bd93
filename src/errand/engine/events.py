"""EventWriter: the RunContext sink of one attempt, writing the agent's reports in order.

Its own module so that engine/attempt.py keeps to one attempt's claim -> run -> classify ->
record; the writer is what an agent's progress(), emit() and event() reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from errand.errors import LeaseLost, StoreUnavailable
from errand.models import Progress
from errand.store.base import Store

__all__ = ["EventWriter"]

log = logging.getLogger("errand.worker")
_Item = tuple[str, dict[str, Any], Progress | None]


class EventWriter:
    """The RunContext sink of one attempt: non-blocking, callable from any thread, in order.

    The agent's reports go into a deque on the event loop (directly from the loop's thread,
    through call_soon_threadsafe from others, both FIFO) and one task writes them with
    store.append_event. Adjacent content deltas that piled up are merged into one event, so a
    fast token stream costs fewer transactions. `close()` flushes before the terminal write.
    """

    def __init__(
        self, store: Store, request_id: str, attempt: int, *, on_lease_lost: Callable[[], None]
    ) -> None:
        self._store = store
        self._request_id = request_id
        self._attempt = attempt
        self._on_lease_lost = on_lease_lost
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue: deque[_Item] = deque()
        self._more = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._dead = False  # lease lost: later reports are dropped

    def sink(self, type: str, data: dict[str, Any], progress: Progress | None) -> None:
        item: _Item = (type, data, progress)
        if threading.get_ident() == self._loop_thread:
            self._put(item)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the attempt is long gone
            self._loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: _Item) -> None:
        if self._closing or self._dead:
            return
        self._queue.append(item)
        self._more.set()
        if self._task is None:
            self._task = self._loop.create_task(self._drain(), name=f"errand-events-{self._request_id}")

    def _next(self) -> _Item:
        type, data, progress = self._queue.popleft()
        if type != "content" or set(data) != {"text"}:
            return type, data, progress
        texts = [str(data["text"])]
        while self._queue and self._queue[0][0] == "content" and set(self._queue[0][1]) == {"text"}:
            texts.append(str(self._queue.popleft()[1]["text"]))
        return type, {"text": "".join(texts)}, None

    async def _drain(self) -> None:
        while True:
            await self._more.wait()
            self._more.clear()
            while self._queue and not self._dead:
                await self._write(*self._next())
            if self._closing or self._dead:
                return

    async def _write(self, type: str, data: dict[str, Any], progress: Progress | None) -> None:
        try:
            await self._store.append_event(self._request_id, self._attempt, type, data, progress)
        except LeaseLost:
            self._dead = True
            self._queue.clear()
            self._on_lease_lost()
        except StoreUnavailable as exc:
            log.warning("dropped a %s event of %s: %s", type, self._request_id, exc)
        except Exception:
            log.exception("dropped a %s event of %s that could not be written", type, self._request_id)

    async def close(self) -> None:
        """Write what is queued, then refuse more (a late thread's reports are dropped)."""
        self._closing = True
        if self._task is not None:
            self._more.set()
            await self._task

    def abandon(self) -> None:
        """Drop what is queued (the attempt was stopped and must write nothing more)."""
        self._closing = True
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
