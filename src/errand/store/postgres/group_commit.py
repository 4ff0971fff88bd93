"""Group commit for the PostgreSQL backend: concurrent calls share one statement and one commit.

It matters on PostgreSQL because a transaction that NOTIFYs holds a cluster-wide lock from its
commit until its WAL flush, so such commits run one at a time: 100 submits in one commit cost
one flush instead of 100. `GroupCommit` gathers the calls; the flush functions (in `ops`) use
`distinct_rounds` and `isolating` to keep one bad or repeated item from spoiling the batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from errand.errors import ErrandError, InvalidRequest, StoreUnavailable
from errand.store.postgres.pool import Database
from errand.store.rules import unstorable

log = logging.getLogger(__name__)

T = TypeVar("T")
ItemT = TypeVar("ItemT")

Flush = Callable[[list[ItemT]], Awaitable[list[T | ErrandError]]]
"""A result or an error per item, in order; raising fails every item with that error."""


class GroupCommit(Generic[ItemT, T]):
    """Concurrent calls share one `flush(items)` (one statement, one commit), which returns a
    result or an error per item. A lone call is flushed at once (no added latency); calls that
    arrive while `max_inflight` flushes are running queue up and go out together next. A caller
    that stops waiting does not undo its write: it is flushed all the same."""

    def __init__(self, flush: Flush[ItemT, T], *, max_batch: int = 500, max_inflight: int = 2) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._queue: list[tuple[ItemT, asyncio.Future[T]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, item: ItemT) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if len(self._tasks) < self._max_inflight:
            task = asyncio.create_task(self._drain(), name="errand-pg-group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                outcomes: list[T | BaseException] = [*await self._flush([item for item, _ in batch])]
            except Exception as exc:
                outcomes = [exc] * len(batch)
            except BaseException:  # cancelled (loop shutting down): nobody may wait forever
                _settle(batch, [StoreUnavailable("the store is closing")] * len(batch))
                raise
            _settle(batch, outcomes)

    async def wait_idle(self) -> None:
        """Until every queued item has been flushed (close() calls it before closing the pool)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(batch: list[tuple[Any, asyncio.Future[T]]], outcomes: Sequence[T | BaseException]) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


BatchFlush = Callable[[Database, list[ItemT]], Awaitable[list[T | ErrandError]]]
"""A flush of the items of one batch on the database: a result or an error per item, in order."""


_REFUSALS = (InvalidRequest, RecursionError, TypeError, ValueError)
"""What a value can make a batch statement raise before anything is written: PostgreSQL's
refusal, or the driver failing to encode (or to describe) an argument. Never a whole batch's."""


def isolating(flush: BatchFlush[ItemT, T]) -> BatchFlush[ItemT, T]:
    """A value PostgreSQL refuses fails the whole statement of a batch: then `flush` runs again
    for each item alone, so that only the bad one fails (with InvalidRequest)."""

    @functools.wraps(flush)
    async def flush_isolating(db: Database, batch: list[ItemT]) -> list[T | ErrandError]:
        try:
            return await flush(db, batch)
        except _REFUSALS as exc:
            if len(batch) == 1:
                raise _refusal(exc) from exc
        outcomes: list[T | ErrandError] = []
        for item in batch:
            try:
                outcomes += await flush(db, [item])
            except ErrandError as exc:
                outcomes.append(exc)
            except _REFUSALS as exc:
                outcomes.append(_refusal(exc))
        return outcomes

    return flush_isolating


def _refusal(exc: Exception) -> InvalidRequest:
    """The InvalidRequest of a refused item; a driver failure behind it is logged (traceback)."""
    if isinstance(exc, InvalidRequest):
        return exc
    log.warning("postgres store: a value could not be sent (%s)", type(exc).__name__, exc_info=exc)
    return unstorable(exc)


def distinct_rounds(batch: Sequence[ItemT], key: Callable[[ItemT], str]) -> list[list[tuple[int, ItemT]]]:
    """Split a batch into rounds in which each request appears once, keeping call order per
    request (one UPDATE cannot apply two changes to the same row). Usually a single round."""
    rounds: list[list[tuple[int, ItemT]]] = []
    seen: list[set[str]] = []
    for n, item in enumerate(batch):
        k = key(item)
        depth = next((d for d in range(len(seen) - 1, -1, -1) if k in seen[d]), -1) + 1
        if depth == len(rounds):
            rounds.append([])
            seen.append(set())
        rounds[depth].append((n, item))
        seen[depth].add(k)
    return rounds
