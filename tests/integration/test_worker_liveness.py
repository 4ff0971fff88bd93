"""The worker takes a dead worker's requests over at once (registered workers, store.requeue_dead),
at start and while it runs, against the real SQLite store; with liveness_interval 0 it leaves
them to lease expiry. The clock is manual, so no lease ever expires here."""

from __future__ import annotations

import asyncio

from errand.clock import ManualClock
from errand.models import Status
from errand.store.base import Store
from tests.integration.test_worker import Running, store, submit, wait_for, worker
from tests.store.contract import gone_process
from tests.support import agents as handlers

__all__ = ["store"]  # the fixture


async def _held_by_a_dead_worker(store: Store) -> str:
    req = await submit(store, "hello")
    await store.register_worker("wrk-dead", gone_process())
    [claim] = await store.claim("wrk-dead", 1, 30)
    assert claim.request.id == req.id
    return req.id


async def test_a_dead_workers_request_is_taken_over_at_start(store: Store, clock: ManualClock) -> None:
    rid = await _held_by_a_dead_worker(store)
    async with Running(worker(store, clock)):
        done = await wait_for(store, rid, lambda r: r.status is Status.COMPLETED, timeout=3)
    assert (done.attempt, done.failures) == (2, 1)


async def test_a_worker_that_dies_later_is_seen_by_the_periodic_check(
    store: Store, clock: ManualClock
) -> None:
    busy = await submit(store, agent="gated")
    async with Running(worker(store, clock, concurrency=1, liveness_interval=0.05)):
        await wait_for(store, busy.id, lambda r: r.progress is not None)  # its one slot is taken
        rid = await _held_by_a_dead_worker(store)
        requeued = await wait_for(store, rid, lambda r: r.failures == 1, timeout=3)
        assert requeued.status is Status.PROCESSING and requeued.error is not None
        assert requeued.error.type == "WorkerLost"
        handlers.release(busy.id)
        done = await wait_for(store, rid, lambda r: r.status is Status.COMPLETED, timeout=3)
    assert done.attempt == 2


async def test_liveness_off_leaves_a_dead_workers_request_to_its_lease(
    store: Store, clock: ManualClock
) -> None:
    rid = await _held_by_a_dead_worker(store)
    async with Running(worker(store, clock, liveness_interval=0)):
        await asyncio.sleep(0.5)
        left = await store.get(rid)
    assert (left.status, left.attempt, left.failures) == (Status.PROCESSING, 1, 0)
    assert await store.requeue_dead() == 1  # the dead owner was there to be seen
