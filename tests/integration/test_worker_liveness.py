"""The worker takes a dead worker's requests over at once (registered workers, store.requeue_dead),
at start and while it runs, against the real SQLite store; with liveness_interval 0 it leaves
them to lease expiry. The clock is manual, so no lease ever expires here."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import REGISTRY

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
    assert len(await store.requeue_dead()) == 1  # the dead owner was there to be seen


def failed_total(agent: str = "unrouted") -> float:
    labels = {"kind": "chat", "agent": agent, "status": "failed"}
    return REGISTRY.get_sample_value("errand_requests_total", labels) or 0.0


def takeover_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "errand.worker" and r.getMessage().startswith("took over")]


async def test_a_dead_workers_request_with_its_attempts_spent_fails_counted_and_logged(
    store: Store, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "errand.worker")
    req = await submit(store, "hello", max_attempts=1)
    again = await submit(store, "again")  # attempts left: runs again
    await store.register_worker("wrk-dead", gone_process())
    assert len(await store.claim("wrk-dead", 2, 30)) == 2
    before = failed_total()
    async with Running(worker(store, clock)):
        failed = await wait_for(store, req.id, lambda r: r.status is Status.FAILED, timeout=3)
        await wait_for(store, again.id, lambda r: r.status is Status.COMPLETED, timeout=3)
    assert failed.error is not None and failed.error.type == "WorkerLost"
    assert failed_total() == before + 1  # errand_requests_total{status="failed"}, once
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and getattr(r, "request_id", None) == req.id
    ]
    assert len(errors) == 1 and errors[0].getMessage().startswith(
        f"failed {req.id} after 1 attempt(s): Worker lost"
    )
    (summary,) = takeover_lines(caplog)
    text = summary.getMessage()
    head = "took over 2 requests of dead workers (1 to run again, 1 failed: attempts spent): "
    assert text.startswith(head)
    assert req.id in text and again.id in text
    assert getattr(summary, "request_id", None) is None  # about two requests: none of them alone


async def test_an_expired_lease_taken_back_by_the_requeue_loop_names_its_request(
    store: Store, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "errand.worker")
    req = await submit(store, "hello", max_attempts=1)
    assert len(await store.claim("wrk-unregistered", 1, 30)) == 1  # left to its lease
    clock.advance(31)
    before = failed_total()
    async with Running(worker(store, clock, lease_seconds=0.2)):  # the loop looks every 0.1 s
        await wait_for(store, req.id, lambda r: r.status is Status.FAILED, timeout=3)
    assert failed_total() == before + 1
    (summary,) = takeover_lines(caplog)
    expected = f"took over 1 requests whose lease expired (1 failed: attempts spent): {req.id}"
    assert summary.getMessage() == expected
    assert summary.levelno == logging.WARNING and getattr(summary, "request_id", None) == req.id
