"""The attempt log's guarantees (`Store.list_attempts`), part of the Store contract run unchanged
against every backend (StoreContract inherits these tests).

Every claim opens a `running` attempt row; the write that ends the attempt closes it in the same
transaction with its outcome, error and (bounded) traceback. The traceback never reaches the
request's error, its events or its webhook body.
"""

from __future__ import annotations

import pytest

from errand.clock import ManualClock
from errand.errors import LeaseLost
from errand.models import AttemptOutcome, AttemptRecord, ErrorInfo, Result, Status, error_document
from errand.store.attempt_log import MAX_TRACEBACK
from errand.store.base import Store
from tests.store.contract import LEASE, RESULT_TTL, Reopen, gone_process, new, running

TRACE = 'Traceback (most recent call last):\n  File "handler.py", line 3, in run\nValueError: bad input\n'


def boom(retryable: bool = False, traceback: str | None = TRACE) -> ErrorInfo:
    return ErrorInfo("ValueError", "bad input", retryable, traceback=traceback)


def shape(record: AttemptRecord) -> tuple[int, str, AttemptOutcome, str | None]:
    return record.attempt, record.worker_id, record.outcome, record.error.type if record.error else None


class AttemptLogContract:
    """list_attempts: one row per attempt, closed by the write that ended it."""

    async def test_a_claim_opens_a_running_attempt_and_finish_closes_it(
        self, store: Store, clock: ManualClock
    ) -> None:
        claimed_at = clock.now()
        req, attempt = await running(store)
        [record] = await store.list_attempts(req.id)
        assert shape(record) == (1, "w1", AttemptOutcome.RUNNING, None)
        assert (record.request_id, record.started_at, record.ended_at) == (req.id, claimed_at, None)
        clock.advance(2.5)
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("done"))
        [record] = await store.list_attempts(req.id)
        assert shape(record) == (1, "w1", AttemptOutcome.COMPLETED, None)
        assert (record.ended_at, record.duration_ms) == (claimed_at + 2.5, 2500)

    async def test_retried_then_completed_keeps_the_error_and_traceback_of_the_first(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, attempt = await running(store)
        await store.retry_later(req.id, attempt, clock.now(), boom(retryable=True))
        [claim] = await store.claim("w2", 1, LEASE)
        await store.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("ok"))
        first, second = await store.list_attempts(req.id)
        assert shape(first) == (1, "w1", AttemptOutcome.RETRIED, "ValueError")
        assert first.error == ErrorInfo("ValueError", "bad input", True)
        assert first.error is not None and first.error.traceback == TRACE
        assert shape(second) == (2, "w2", AttemptOutcome.COMPLETED, None)
        retry = [e for e in await store.events_since(req.id) if e.type == "retry"]
        assert [e.data["attempt"] for e in retry] == [1]
        assert retry[0].data["error"] == {"type": "ValueError", "message": "bad input", "retryable": True}

    async def test_a_failure_keeps_its_traceback_out_of_the_error_and_the_events(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, attempt = await running(store)
        failed = await store.finish(req.id, attempt, Status.FAILED, error=boom())
        [record] = await store.list_attempts(req.id)
        assert shape(record) == (1, "w1", AttemptOutcome.FAILED, "ValueError")
        assert record.error is not None and record.error.traceback == TRACE
        stored = (await store.get(req.id)).error
        assert stored == ErrorInfo("ValueError", "bad input") and stored.traceback is None
        assert failed.error is not None and failed.error.traceback is None
        last = (await store.events_since(req.id))[-1]
        assert last.type == "failed" and last.data["attempt"] == 1
        assert last.data["error"] == error_document(
            ErrorInfo("ValueError", "bad input")
        )  # one shape: with code
        assert "Traceback" not in str([e.data for e in await store.events_since(req.id)])

    async def test_a_traceback_is_stored_bounded_and_cleaned_keeping_its_end(self, store: Store) -> None:
        req, attempt = await running(store)
        huge = "frame\x00 \ud800 line\n" * 20_000 + TRACE
        await store.finish(req.id, attempt, Status.FAILED, error=boom(traceback=huge))
        [record] = await store.list_attempts(req.id)
        assert record.error is not None and record.error.traceback is not None
        kept = record.error.traceback
        assert len(kept) <= MAX_TRACEBACK and kept.endswith(TRACE)
        assert "\x00" not in kept and "\ud800" not in kept
        kept.encode("utf-8")

    async def test_an_error_made_not_raised_has_no_traceback(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store)
        await store.retry_later(req.id, attempt, clock.now(), boom(retryable=True, traceback=None))
        [record] = await store.list_attempts(req.id)
        assert record.error is not None and record.error.traceback is None

    async def test_a_lost_lease_closes_the_attempt_and_its_late_write_changes_nothing(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, attempt = await running(store)
        clock.advance(LEASE + 1)
        assert len(await store.requeue_expired()) == 1
        [claim] = await store.claim("w2", 1, LEASE)
        with pytest.raises(LeaseLost):  # the first worker comes back too late
            await store.finish(req.id, attempt, Status.FAILED, error=boom())
        first, second = await store.list_attempts(req.id)
        assert shape(first) == (1, "w1", AttemptOutcome.LEASE_LOST, "WorkerLost")
        assert first.ended_at == clock.now() and first.error is not None and first.error.traceback is None
        assert shape(second) == (2, "w2", AttemptOutcome.RUNNING, None)
        await store.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("ok"))
        assert [r.outcome for r in await store.list_attempts(req.id)] == [
            AttemptOutcome.LEASE_LOST,
            AttemptOutcome.COMPLETED,
        ]

    async def test_a_lost_lease_on_the_last_attempt_closes_it_as_lost(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, _ = await running(store, max_attempts=1)
        clock.advance(LEASE + 1)
        assert len(await store.requeue_expired()) == 1
        assert (await store.get(req.id)).status is Status.FAILED
        [record] = await store.list_attempts(req.id)
        assert shape(record) == (1, "w1", AttemptOutcome.LEASE_LOST, "WorkerLost")

    async def test_a_dead_worker_s_attempts_end_worker_lost(self, store: Store) -> None:
        await store.register_worker("w-dead", gone_process())
        req, _ = await store.submit(new(max_attempts=3))
        spent, _ = await store.submit(new(max_attempts=1))
        assert len(await store.claim("w-dead", 2, LEASE)) == 2
        assert len(await store.requeue_dead()) == 2
        for request_id in (req.id, spent.id):
            [record] = await store.list_attempts(request_id)
            assert shape(record) == (1, "w-dead", AttemptOutcome.WORKER_LOST, "WorkerLost")

    async def test_a_cancel_closes_the_running_attempt_only(self, store: Store, clock: ManualClock) -> None:
        req, _ = await running(store)
        await store.request_cancel(req.id)
        [record] = await store.list_attempts(req.id)
        assert (shape(record), record.ended_at) == ((1, "w1", AttemptOutcome.CANCELLED, None), clock.now())
        waiting, attempt = await running(store)
        await store.retry_later(waiting.id, attempt, clock.now() + 60, boom(retryable=True))
        await store.request_cancel(waiting.id)  # between attempts: the retried one stays retried
        assert [r.outcome for r in await store.list_attempts(waiting.id)] == [AttemptOutcome.RETRIED]
        pending, _ = await store.submit(new())
        await store.request_cancel(pending.id)
        assert await store.list_attempts(pending.id) == []

    async def test_unknown_request_has_no_attempts(self, store: Store) -> None:
        assert await store.list_attempts("req_unknown") == []

    async def test_attempts_survive_reopen(self, store: Store, clock: ManualClock, reopen: Reopen) -> None:
        req, attempt = await running(store)
        await store.retry_later(req.id, attempt, clock.now(), boom(retryable=True))
        [claim] = await store.claim("w2", 1, LEASE)
        await store.finish(req.id, claim.attempt, Status.FAILED, error=boom())
        before = await store.list_attempts(req.id)
        again = await reopen()
        after = await again.list_attempts(req.id)
        assert after == before and len(after) == 2
        assert [r.error.traceback if r.error else None for r in after] == [TRACE, TRACE]

    async def test_attempts_are_purged_with_the_request(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store)
        await store.finish(req.id, attempt, Status.FAILED, error=boom())
        kept, kept_attempt = await running(store)
        clock.advance(RESULT_TTL + 1)
        await store.finish(kept.id, kept_attempt, Status.FAILED, error=boom())  # ended now: kept
        assert await store.purge_expired(result_ttl=RESULT_TTL, tombstone_ttl=10 * RESULT_TTL) == 1
        assert await store.list_attempts(req.id) == []
        assert len(await store.list_attempts(kept.id)) == 1
