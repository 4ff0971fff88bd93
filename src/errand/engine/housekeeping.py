"""The worker's housekeeping side loops: requeue expired leases, expire unanswered questions,
fold the queue counts, purge.

Run only by a worker that does housekeeping, each under the worker's supervisor (a crash is
logged and the loop restarted). Split from engine/worker.py; they touch only the store, the
worker's settings and, for a requeue, its wake-up event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container

from errand.engine.settings import WorkerSettings
from errand.engine.takeover import report_takeover
from errand.metrics import INPUT_EXPIRED
from errand.store.base import Store

__all__ = [
    "INPUT_EXPIRY_INTERVAL",
    "QUEUE_FOLD_INTERVAL",
    "expiry_loop",
    "fold_loop",
    "purge_loop",
    "requeue_loop",
]

QUEUE_FOLD_INTERVAL = 5.0
INPUT_EXPIRY_INTERVAL = 1.0
"""Seconds between scans for expired questions (one index probe when none is due)."""

log = logging.getLogger("errand.worker")


async def requeue_loop(
    store: Store, settings: WorkerSettings, wake: asyncio.Event, agents: Container[str] | None = None
) -> None:
    """Take back expired leases every half lease; what was taken is told by `report_takeover`."""
    while True:
        await asyncio.sleep(settings.lease_seconds / 2)
        touched = await store.requeue_expired()
        if touched:
            report_takeover(touched, "whose lease expired", agents)
            wake.set()


async def expiry_loop(store: Store, interval: float = INPUT_EXPIRY_INTERVAL) -> None:
    """End requests whose question expired unanswered, by the ask's on_timeout. The store makes
    it exactly once across processes, so every housekeeping worker may run this."""
    while True:
        for req in await store.expire_inputs():
            INPUT_EXPIRED.labels(req.status.value).inc()
            log.warning(
                "request %s: its question expired unanswered; it is %s",
                req.id,
                req.status.value,
                extra={"request_id": req.id},
            )
        await asyncio.sleep(interval)


async def fold_loop(store: Store) -> None:
    """Read the queue counts every QUEUE_FOLD_INTERVAL: a read folds the count rows that
    status changes append (store/queue.py, and the console's), so they stay few even when
    nobody scrapes or looks."""
    while True:
        await asyncio.sleep(QUEUE_FOLD_INTERVAL)
        await store.queue_stats()
        await store.console_counts()  # the overview's count rows (migration 0013), alike


async def purge_loop(store: Store, settings: WorkerSettings) -> None:
    """Purge now, then every housekeeping_interval (async.purge_interval). Reads answer 410
    from the moment a result outlives result_ttl; the purge only reclaims the space."""
    while True:
        purged = await store.purge_expired(settings.result_ttl, settings.tombstone_ttl)
        if purged:
            log.info("purged %d expired requests", purged)
        dropped = await store.purge_console()
        if dropped:
            log.info("purged %d expired console sessions", dropped)
        await asyncio.sleep(settings.housekeeping_interval)
