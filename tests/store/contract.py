"""StoreContract: the Store protocol's guarantees as tests, run unchanged against every backend.

A backend's test module subclasses `StoreContract` and provides two fixtures:
  store  - an opened, migrated, empty store driven by the `clock` fixture (a ManualClock)
  reopen - an async callable returning a NEW store instance on the same database (durability)
Both should use a poll_interval of at least 2 s (see WOKEN) and result_ttl=RESULT_TTL.
Only the Store protocol is used here: no SQL, no backend internals. Where backends really differ,
the test reads a capability flag.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from errand.clock import ManualClock, new_request_id
from errand.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidRequest,
    LeaseLost,
    NotFound,
    RequestExpired,
    StoreUnavailable,
)
from errand.models import (
    ErrorInfo,
    IdempotencyKey,
    Mode,
    NewRequest,
    Progress,
    Request,
    Result,
    Status,
    can_transition,
    to_document,
)
from errand.store.base import Store
from errand.store.processes import WorkerProcess, this_process
from tests.store.contract_scheduling import SchedulingContract

Reopen = Callable[[], Awaitable[Store]]
HOOK = "https://hooks.example.com/errand"
LEASE = 30.0
DAY = 86400.0
RESULT_TTL = 3600.0
"""The result_ttl both fixtures open their stores with (the read rule of expiry)."""
WOKEN = 1.0
"""A woken wait returns well within this (s). Fixtures use a poll_interval of 2 s or more, so a
wait that returns this fast was woken by a notification, not by its polling safety net."""


def new(request_id: str | None = None, **fields: Any) -> NewRequest:
    values: dict[str, Any] = {"owner": "owner-a", "user_id": "u1", "message": "hello"} | fields
    return NewRequest(id=request_id or new_request_id(), **values)


def key(k: str = "key-1", fingerprint: str = "fp-1", scope: str = "owner-a:u1:/v1/chat") -> IdempotencyKey:
    return IdempotencyKey(key=k, scope=scope, fingerprint=fingerprint)


async def running(store: Store, **fields: Any) -> tuple[Request, int]:
    """A request claimed by worker w1: (request as claimed, attempt)."""
    req, _ = await store.submit(new(**fields))
    claims = await store.claim("w1", 1, LEASE)
    assert [c.request.id for c in claims] == [req.id]
    return claims[0].request, claims[0].attempt


def gone_process() -> WorkerProcess:
    """A process of this node that has exited (and was reaped): its pid is free."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return dataclasses.replace(this_process(), pid=child.pid)


async def in_state(store: Store, clock: ManualClock, state: str) -> tuple[Request, int]:
    """A request brought into `state` through the public API, and the attempt a worker holds."""
    if state == "pending":
        req, _ = await store.submit(new())
        return req, 0
    if state == "cancelled":
        req, _ = await store.submit(new())
        return (await store.request_cancel(req.id))[0], 0
    req, attempt = await running(store)
    if state == "waiting_retry":
        req = await store.retry_later(req.id, attempt, clock.now() + 60, ErrorInfo("Boom", "try again", True))
    elif state == "completed":
        req = await store.finish(req.id, attempt, Status.COMPLETED, result=Result("done"))
    elif state == "failed":
        req = await store.finish(req.id, attempt, Status.FAILED, error=ErrorInfo("Boom", "broken"))
    return req, attempt


async def apply(store: Store, clock: ManualClock, op: str, req: Request, attempt: int) -> Status | None:
    """Run one operation; the status it left the request in (None: claim took nothing)."""
    if op == "claim":
        claims = await store.claim("w2", 10, LEASE)
        return claims[0].request.status if claims else None
    if op == "complete":
        return (await store.finish(req.id, attempt, Status.COMPLETED, result=Result("x"))).status
    if op == "fail":
        return (await store.finish(req.id, attempt, Status.FAILED, error=ErrorInfo("E", "e"))).status
    if op == "retry":
        return (await store.retry_later(req.id, attempt, clock.now() + 5, ErrorInfo("E", "e", True))).status
    return (await store.request_cancel(req.id))[0].status


P, C, F, X = Status.PROCESSING, Status.COMPLETED, Status.FAILED, Status.CANCELLED
OPS = ("claim", "complete", "fail", "retry", "cancel")
# state -> expected outcome of each of OPS: a status, None (claim took nothing) or an error type
TABLE: dict[str, tuple[Any, ...]] = {
    "pending": (P, LeaseLost, LeaseLost, LeaseLost, X),
    "processing": (None, C, F, P, X),
    "waiting_retry": (None, LeaseLost, LeaseLost, LeaseLost, X),
    "completed": (None, LeaseLost, LeaseLost, LeaseLost, Conflict),
    "failed": (None, LeaseLost, LeaseLost, LeaseLost, Conflict),
    "cancelled": (None, LeaseLost, LeaseLost, LeaseLost, X),
}
CASES = [(state, op, outcome) for state, row in TABLE.items() for op, outcome in zip(OPS, row, strict=True)]


class StoreContract(SchedulingContract):
    """Every guarantee of errand.store.base.Store, for any backend (scheduling: the mixin)."""

    # -- submit and read ----------------------------------------------------------------------
    async def test_submit_get_round_trips_every_field(self, store: Store, clock: ManualClock) -> None:
        spec = new(
            kind="trigger",
            agent="researcher",
            session_id="s-1",
            metadata={"a": 1, "nested": {"b": [1, 2, "three"]}, "ü": "ünïcode"},
            trigger="github-issue",
            webhook_url=HOOK,
            mode=Mode.SYNC,
            max_attempts=5,
            estimated_seconds=12.5,
            message="do the thing ✓",
        )
        req, created = await store.submit(spec)
        assert created is True
        for name in ("id", "owner", "user_id", "kind", "agent", "session_id", "metadata", "trigger"):
            assert getattr(req, name) == getattr(spec, name), name
        assert (req.webhook_url, req.mode, req.max_attempts, req.message) == (
            HOOK,
            Mode.SYNC,
            5,
            spec.message,
        )
        assert req.estimated_seconds == 12.5
        assert (req.status, req.attempt, req.failures, req.seq, req.expired) == (
            Status.PENDING,
            0,
            0,
            1,
            False,
        )
        assert req.created_at == req.run_at == clock.now()
        assert (req.started_at, req.completed_at, req.progress, req.result, req.error) == (None,) * 5
        assert await store.get(req.id) == req

    async def test_the_trace_context_is_kept_by_every_submit_and_claim(self, store: Store) -> None:
        trace = {
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "a=1",
        }
        plain, _ = await store.submit(new(trace_context=trace))
        keyed, _ = await store.submit(new(trace_context=trace), key())
        bare, _ = await store.submit(new())
        assert (plain.trace_context, keyed.trace_context, bare.trace_context) == (trace, trace, None)
        assert [(await store.get(r.id)).trace_context for r in (plain, keyed, bare)] == [trace, trace, None]
        claimed = {c.request.id: c.request.trace_context for c in await store.claim("w1", 3, LEASE)}
        assert claimed == {plain.id: trace, keyed.id: trace, bare.id: None}

    async def test_submit_is_durable_across_reopen(self, store: Store, reopen: Reopen) -> None:
        req, _ = await store.submit(new(metadata={"k": "v"}, webhook_url=HOOK))
        await store.close()
        again = await reopen()
        assert await again.get(req.id) == req
        assert [e.type for e in await again.events_since(req.id)] == ["created"]

    async def test_get_unknown_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.get("req_does_not_exist")

    async def test_duplicate_id_is_conflict_and_keeps_the_original(self, store: Store) -> None:
        first, _ = await store.submit(new("req_same", message="first"))
        with pytest.raises(Conflict):
            await store.submit(new("req_same", message="second"))
        assert await store.get("req_same") == first
        assert len(await store.events_since("req_same")) == 1

    # -- idempotency ----------------------------------------------------------------------------
    async def test_idempotent_retry_returns_the_original(self, store: Store) -> None:
        first, created = await store.submit(new(), key())
        again, created_again = await store.submit(new(), key())  # a retry gets a fresh id from the API
        assert (created, created_again) == (True, False)
        assert again == first
        page = await store.list(owner="owner-a", user_id="u1")
        assert [r.id for r in page.requests] == [first.id]

    async def test_idempotency_key_with_another_body_is_a_mismatch(self, store: Store) -> None:
        first, _ = await store.submit(new(), key(fingerprint="fp-1"))
        with pytest.raises(IdempotencyMismatch):
            await store.submit(new(), key(fingerprint="fp-2"))
        assert [r.id for r in (await store.list(owner=None, user_id=None)).requests] == [first.id]

    async def test_idempotency_survives_reopen(self, store: Store, reopen: Reopen) -> None:
        first, _ = await store.submit(new(), key())
        await store.close()
        again = await reopen()
        assert await again.submit(new(), key()) == (first, False)
        with pytest.raises(IdempotencyMismatch):
            await again.submit(new(), key(fingerprint="other"))

    async def test_idempotency_scopes_are_independent(self, store: Store) -> None:
        a, created_a = await store.submit(new(), key(scope="owner-a:u1:/v1/chat"))
        b, created_b = await store.submit(new(), key(scope="owner-a:u2:/v1/chat"))
        assert created_a and created_b and a.id != b.id

    async def test_rejected_submit_stores_no_idempotency_key(self, store: Store) -> None:
        await store.submit(new("req_taken"))
        with pytest.raises(Conflict):
            await store.submit(new("req_taken"), key())
        req, created = await store.submit(new("req_free"), key())
        assert (req.id, created) == ("req_free", True)

    @pytest.mark.parametrize("bad", ["nested", "surrogate", "set"])
    async def test_an_unstorable_value_fails_only_its_own_submit(self, store: Store, bad: str) -> None:
        """Metadata JSON cannot hold, submitted beside good submits (one group commit on
        PostgreSQL): the bad ones are InvalidRequest, naming no value; every good one is stored."""
        deep: Any = "leaf"
        for _ in range(300):
            deep = {"a": deep}
        value = {"nested": deep, "surrogate": "\ud800", "set": {1, 2}}[bad]
        bad_ones = [new(metadata={"m": value}) for _ in range(20)]
        good_ones = [new(metadata={"n": n}) for n in range(40)]
        outcomes = await asyncio.gather(
            *(store.submit(n) for pair in zip(bad_ones, good_ones, strict=False) for n in pair),
            *(store.submit(n) for n in good_ones[len(bad_ones) :]),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == len(bad_ones) and all(isinstance(o, InvalidRequest) for o in refused)
        assert all("leaf" not in str(o) and "{" not in str(o) for o in refused)
        for n in good_ones:
            assert (await store.get(n.id)).metadata == n.metadata
        for n in bad_ones:
            with pytest.raises(NotFound):
                await store.get(n.id)

    async def test_idempotency_keys_expire_after_a_day(self, store: Store, clock: ManualClock) -> None:
        first, _ = await store.submit(new(), key())
        clock.advance(DAY + 1)
        await store.purge_expired(result_ttl=10 * DAY, tombstone_ttl=30 * DAY)
        second, created = await store.submit(new(), key())
        assert created is True and second.id != first.id

    # -- the transition table -------------------------------------------------------------------
    @pytest.mark.parametrize(("state", "op", "outcome"), CASES, ids=[f"{s}-{o}" for s, o, _ in CASES])
    async def test_transition(
        self, store: Store, clock: ManualClock, state: str, op: str, outcome: Any
    ) -> None:
        req, attempt = await in_state(store, clock, state)
        before = await store.get(req.id)
        if isinstance(outcome, type):
            with pytest.raises(outcome):
                await apply(store, clock, op, req, attempt)
            after = await store.get(req.id)
            assert (after.status, after.seq, after.attempt) == (before.status, before.seq, before.attempt)
            return
        status = await apply(store, clock, op, req, attempt)
        after = await store.get(req.id)
        assert status == outcome
        if outcome is None or before.status is Status.CANCELLED:  # nothing taken / nothing to do
            assert after == before
        else:
            assert can_transition(before.status, after.status)
            assert after.status == outcome and after.seq > before.seq

    async def test_finish_twice_keeps_the_first_result(self, store: Store) -> None:
        req, attempt = await running(store)
        done = await store.finish(req.id, attempt, Status.COMPLETED, result=Result("first", extra={"n": 1}))
        with pytest.raises(LeaseLost):
            await store.finish(req.id, attempt, Status.COMPLETED, result=Result("second"))
        assert await store.get(req.id) == done
        assert done.result == Result("first", extra={"n": 1}) and done.error is None

    async def test_finish_records_outcome_and_times(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store, agent="researcher")
        clock.advance(2.5)
        failed = await store.finish(req.id, attempt, Status.FAILED, error=ErrorInfo("Boom", "it broke"))
        assert (failed.status, failed.error, failed.result) == (
            Status.FAILED,
            ErrorInfo("Boom", "it broke"),
            None,
        )
        assert failed.completed_at == clock.now() and failed.duration_ms == 2500

    async def test_finish_needs_a_terminal_status(self, store: Store) -> None:
        req, attempt = await running(store)
        with pytest.raises(InvalidRequest):
            await store.finish(req.id, attempt, Status.PENDING)
        assert (await store.get(req.id)).status is Status.PROCESSING

    async def test_cancel_pending_is_immediate_and_terminal(self, store: Store, clock: ManualClock) -> None:
        req, _ = await store.submit(new())
        cancelled, how = await store.request_cancel(req.id)
        assert (cancelled.status, how, cancelled.completed_at) == (Status.CANCELLED, "immediate", clock.now())
        assert await store.claim("w1", 10, LEASE) == []
        again, how_again = await store.request_cancel(req.id)
        assert (again, how_again) == (cancelled, "immediate")

    async def test_cancel_running_is_cooperative_and_fences_the_worker(self, store: Store) -> None:
        req, attempt = await running(store)
        other, _ = await running(store)
        cancelled, how = await store.request_cancel(req.id)
        assert (cancelled.status, how, cancelled.result) == (Status.CANCELLED, "cooperative", None)
        assert await store.cancelled_among([req.id, other.id]) == {req.id}
        seq = (await store.get(req.id)).seq
        with pytest.raises(LeaseLost):
            await store.finish(req.id, attempt, Status.COMPLETED, result=Result("late"))
        with pytest.raises(LeaseLost):
            await store.append_event(req.id, attempt, "progress", {"percent": 50})
        assert await store.heartbeat("w1", {req.id: attempt, other.id: 1}, LEASE) == {req.id}
        after = await store.get(req.id)
        assert (after.status, after.seq, after.result) == (Status.CANCELLED, seq, None)

    async def test_cancel_waiting_retry_is_immediate(self, store: Store, clock: ManualClock) -> None:
        req, _ = await in_state(store, clock, "waiting_retry")
        cancelled, how = await store.request_cancel(req.id)
        assert (cancelled.status, how) == (Status.CANCELLED, "immediate")
        clock.advance(120)
        assert await store.claim("w1", 10, LEASE) == []

    @pytest.mark.parametrize("state", ["completed", "failed"])
    async def test_cancel_finished_is_conflict(self, store: Store, clock: ManualClock, state: str) -> None:
        req, _ = await in_state(store, clock, state)
        with pytest.raises(Conflict):
            await store.request_cancel(req.id)
        assert await store.get(req.id) == req

    async def test_cancel_unknown_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.request_cancel("req_nope")

    async def test_cancelled_among_reports_terminal_only(self, store: Store, clock: ManualClock) -> None:
        states = [
            "processing",
            "waiting_retry",
            "completed",
            "failed",
            "cancelled",
            "pending",
        ]  # pending last
        ids = {s: (await in_state(store, clock, s))[0].id for s in states}
        found = await store.cancelled_among(list(ids.values()))
        assert found == {ids["completed"], ids["failed"], ids["cancelled"]}
        assert await store.cancelled_among([]) == set()

    # -- claim ----------------------------------------------------------------------------------
    async def test_claim_sets_lease_attempt_and_started(self, store: Store, clock: ManualClock) -> None:
        req, _ = await store.submit(new())
        clock.advance(3)
        [claim] = await store.claim("w1", 5, LEASE)
        got = claim.request
        assert (claim.attempt, got.attempt, got.status, got.seq) == (1, 1, Status.PROCESSING, 2)
        assert got.started_at == clock.now() and got.id == req.id
        assert await store.get(req.id) == got
        events = await store.events_since(req.id)
        assert [(e.seq, e.type) for e in events] == [(1, "created"), (2, "started")]

    async def test_claim_takes_oldest_first_up_to_limit(self, store: Store, clock: ManualClock) -> None:
        ids = []
        for _ in range(4):
            ids.append((await store.submit(new()))[0].id)
            clock.advance(1)
        assert await store.claim("w1", 0, LEASE) == []
        assert [c.request.id for c in await store.claim("w1", 2, LEASE)] == ids[:2]
        assert [c.request.id for c in await store.claim("w1", 10, LEASE)] == ids[2:]
        assert await store.claim("w1", 10, LEASE) == []

    async def test_claim_is_exclusive_under_concurrency(self, store: Store) -> None:
        submitted = await asyncio.gather(*(store.submit(new()) for _ in range(200)))
        expected = {req.id for req, _ in submitted}

        async def claimer(n: int) -> list[str]:
            got: list[str] = []
            while batch := await store.claim(f"w{n}", 7, LEASE):
                got += [c.request.id for c in batch]
                assert all(c.attempt == 1 for c in batch)
                await asyncio.sleep(0)
            return got

        results = await asyncio.gather(*(claimer(n) for n in range(8)))
        claimed = [rid for got in results for rid in got]
        assert len(claimed) == len(set(claimed)) == 200
        assert set(claimed) == expected

    # -- leases, takeover and fencing -------------------------------------------------------------
    async def test_lease_expiry_requeues_for_takeover(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store, max_attempts=3)
        started = (await store.get(req.id)).started_at
        clock.advance(LEASE - 1)
        assert len(await store.requeue_expired()) == 0
        clock.advance(2)
        assert len(await store.requeue_expired()) == 1
        assert len(await store.requeue_expired()) == 0
        requeued = await store.get(req.id)
        assert (requeued.status, requeued.failures, requeued.attempt) == (Status.PROCESSING, 1, attempt)
        [taken] = await store.claim("w2", 1, LEASE)
        assert (taken.attempt, taken.request.started_at) == (attempt + 1, started)

    async def test_requeue_ignores_requests_without_a_live_lease(
        self, store: Store, clock: ManualClock
    ) -> None:
        ids = [(await in_state(store, clock, s))[0].id for s in ("completed", "failed", "waiting_retry")]
        cancelled, _ = await running(store)
        await store.request_cancel(cancelled.id)
        before = [await store.get(i) for i in [*ids, cancelled.id]]
        clock.advance(LEASE + 1)
        assert len(await store.requeue_expired()) == 0
        assert [await store.get(i) for i in [*ids, cancelled.id]] == before

    async def test_stale_attempt_is_fenced_after_takeover(self, store: Store, clock: ManualClock) -> None:
        req, stale = await running(store)
        clock.advance(LEASE + 1)
        await store.requeue_expired()
        [claim] = await store.claim("w2", 1, LEASE)
        seq = (await store.get(req.id)).seq
        with pytest.raises(LeaseLost):
            await store.finish(req.id, stale, Status.COMPLETED, result=Result("stale"))
        with pytest.raises(LeaseLost):
            await store.append_event(req.id, stale, "content", {"text": "stale"})
        with pytest.raises(LeaseLost):
            await store.retry_later(req.id, stale, clock.now(), ErrorInfo("E", "stale"))
        assert await store.heartbeat("w1", {req.id: stale}, LEASE) == {req.id}
        assert await store.heartbeat("w2", {req.id: claim.attempt}, LEASE) == set()
        assert (await store.get(req.id)).seq == seq
        done = await store.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("fresh"))
        assert done.result == Result("fresh")

    async def test_heartbeat_extends_the_lease(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store)
        clock.advance(LEASE - 5)
        assert await store.heartbeat("w1", {req.id: attempt}, LEASE) == set()
        clock.advance(LEASE - 5)
        assert len(await store.requeue_expired()) == 0
        assert await store.heartbeat("w-other", {req.id: attempt}, LEASE) == {req.id}
        assert await store.heartbeat("w1", {}, LEASE) == set()

    async def test_lost_worker_fails_the_request_at_max_attempts(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, _ = await running(store, max_attempts=2, webhook_url=HOOK)
        clock.advance(LEASE + 1)
        assert len(await store.requeue_expired()) == 1
        await store.claim("w2", 1, LEASE)
        clock.advance(LEASE + 1)
        assert len(await store.requeue_expired()) == 1
        failed = await store.get(req.id)
        assert (failed.status, failed.failures, failed.attempt) == (Status.FAILED, 2, 2)
        assert failed.error is not None and "lost" in failed.error.message.lower()
        assert failed.completed_at == clock.now()
        assert (await store.events_since(req.id))[-1].type == "failed"
        [delivery] = await store.list_deliveries(req.id)
        assert delivery.state == "pending"
        assert await store.claim("w3", 1, LEASE) == []

    # -- dead owners: taken over at once, not after the lease ------------------------------------
    async def test_dead_owner_is_taken_over_at_once(self, store: Store, clock: ManualClock) -> None:
        await store.register_worker("w-dead", gone_process())
        req, _ = await store.submit(new(max_attempts=3))
        last, _ = await store.submit(new(max_attempts=1, webhook_url=HOOK))
        [first, second] = await store.claim("w-dead", 2, LEASE)
        assert len(await store.requeue_dead()) == 2  # no time passed: the lease has not expired
        requeued, failed = await store.get(req.id), await store.get(last.id)
        assert (requeued.status, requeued.failures, requeued.attempt) == (Status.PROCESSING, 1, first.attempt)
        assert requeued.error is not None and requeued.error.type == "WorkerLost"
        assert "died" in requeued.error.message and requeued.error.retryable
        assert (failed.status, failed.failures) == (Status.FAILED, 1)
        assert (await store.events_since(last.id))[-1].type == "failed"
        assert [d.state for d in await store.list_deliveries(last.id)] == ["pending"]
        with pytest.raises(LeaseLost):  # the dead worker's attempt is fenced
            await store.finish(req.id, first.attempt, Status.COMPLETED, result=Result("stale"))
        [taken] = await store.claim("w2", 2, LEASE)
        assert (taken.request.id, taken.attempt) == (req.id, first.attempt + 1)
        assert len(await store.requeue_dead()) == 0
        assert second.request.id == last.id

    async def test_live_owner_is_not_taken_over(self, store: Store, clock: ManualClock) -> None:
        await store.register_worker("w1")  # this process: alive
        req, attempt = await running(store)
        assert len(await store.requeue_dead()) == 0
        assert len(await store.requeue_dead()) == 0
        assert await store.heartbeat("w1", {req.id: attempt}, LEASE) == set()
        clock.advance(LEASE + 1)  # the lease stays the fallback
        assert len(await store.requeue_expired()) == 1

    async def test_pid_reused_by_a_later_process_counts_as_dead(self, store: Store) -> None:
        reused = dataclasses.replace(this_process(), started="another start time")
        await store.register_worker("w1", reused)
        req, _ = await running(store)
        assert len(await store.requeue_dead()) == 1
        assert (await store.get(req.id)).failures == 1

    async def test_unregistered_and_unknowable_owners_are_left_to_their_lease(
        self, store: Store, clock: ManualClock
    ) -> None:
        far = WorkerProcess(host="elsewhere", node="another-node", pid=gone_process().pid, started=None)
        await store.register_worker("w-far", far)  # a pid of another node proves nothing here
        await store.submit(new())
        await store.submit(new())
        assert len(await store.claim("w-far", 1, LEASE)) == 1
        assert len(await store.claim("w-unregistered", 1, LEASE)) == 1
        assert len(await store.requeue_dead()) == 0
        clock.advance(LEASE + 1)
        assert len(await store.requeue_dead()) == 0
        assert len(await store.requeue_expired()) == 2

    async def test_registering_again_replaces_the_process(self, store: Store) -> None:
        await store.register_worker("w1", gone_process())
        await store.register_worker("w1")  # the same id, now this live process
        await running(store)
        assert len(await store.requeue_dead()) == 0

    # -- retry_later ----------------------------------------------------------------------------
    async def test_retry_later_waits_for_run_at(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store)
        error = ErrorInfo("Timeout", "slow provider", retryable=True)
        retried = await store.retry_later(req.id, attempt, clock.now() + 10, error)
        assert (retried.status, retried.failures, retried.run_at) == (Status.PROCESSING, 1, clock.now() + 10)
        last = (await store.events_since(req.id))[-1]
        assert (last.type, last.seq) == ("retry", retried.seq)
        assert await store.heartbeat("w1", {req.id: attempt}, LEASE) == {req.id}
        clock.advance(9)
        assert await store.claim("w1", 1, LEASE) == []
        clock.advance(1)
        [claim] = await store.claim("w1", 1, LEASE)
        assert (claim.request.id, claim.attempt) == (req.id, attempt + 1)

    # -- events ---------------------------------------------------------------------------------
    async def test_events_are_ordered_without_gaps_and_resumable(self, store: Store) -> None:
        req, attempt = await running(store)
        progress = Progress(percent=60, message="third source", step=3, total_steps=5)
        event = await store.append_event(req.id, attempt, "progress", progress.to_dict(), progress)
        assert (event.seq, event.type, event.data) == (3, "progress", progress.to_dict())
        await store.append_event(req.id, attempt, "content", {"text": "Based on"})
        assert (await store.get(req.id)).progress == progress
        done = await store.finish(req.id, attempt, Status.COMPLETED, result=Result("Based on my research"))
        events = await store.events_since(req.id)
        assert [e.type for e in events] == ["created", "started", "progress", "content", "completed"]
        assert [e.seq for e in events] == [1, 2, 3, 4, 5] and done.seq == 5
        assert events[-1].data == to_document(done)
        assert [e.seq for e in await store.events_since(req.id, after_seq=2)] == [3, 4, 5]
        assert [e.seq for e in await store.events_since(req.id, after_seq=2, limit=2)] == [3, 4]
        assert await store.events_since(req.id, after_seq=5) == []

    async def test_cancel_event_carries_the_document(self, store: Store) -> None:
        req, _ = await store.submit(new())
        cancelled, _ = await store.request_cancel(req.id)
        last = (await store.events_since(req.id))[-1]
        assert (last.type, last.seq, last.data) == ("cancelled", cancelled.seq, to_document(cancelled))

    # -- waiting --------------------------------------------------------------------------------
    async def test_wait_for_change_returns_at_once_if_already_changed(self, store: Store) -> None:
        req, _ = await store.submit(new())
        started = time.monotonic()
        assert await store.wait_for_change(req.id, 0, timeout=5) is True
        assert time.monotonic() - started < 0.5

    async def test_wait_for_change_wakes_on_a_change(self, store: Store) -> None:
        req, _ = await store.submit(new())
        waiter = asyncio.create_task(store.wait_for_change(req.id, req.seq, timeout=5))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        started = time.monotonic()
        await store.request_cancel(req.id)
        assert await asyncio.wait_for(waiter, 2) is True
        assert time.monotonic() - started < WOKEN

    async def test_wait_for_change_times_out(self, store: Store) -> None:
        req, _ = await store.submit(new())
        started = time.monotonic()
        assert await store.wait_for_change(req.id, req.seq, timeout=0.2) is False
        assert 0.15 <= time.monotonic() - started < 1.5

    async def test_wait_for_work_wakes_on_submit(self, store: Store) -> None:
        await store.wait_for_work(0)  # consume anything pending
        waiter = asyncio.create_task(store.wait_for_work(5))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        started = time.monotonic()
        await store.submit(new())
        await asyncio.wait_for(waiter, 2)
        assert time.monotonic() - started < WOKEN

    async def test_wait_for_cancellation_wakes_on_cancel(self, store: Store) -> None:
        req, _ = await running(store)
        await store.wait_for_cancellation(0)
        waiter = asyncio.create_task(store.wait_for_cancellation(5))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        started = time.monotonic()
        await store.request_cancel(req.id)
        await asyncio.wait_for(waiter, 2)
        assert time.monotonic() - started < WOKEN

    async def test_wait_for_outbox_wakes_on_a_terminal_write(self, store: Store) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        await store.wait_for_outbox(0)
        waiter = asyncio.create_task(store.wait_for_outbox(5))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        started = time.monotonic()
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
        await asyncio.wait_for(waiter, 2)
        assert time.monotonic() - started < WOKEN

    async def test_waits_end_by_their_timeout(self, store: Store) -> None:
        started = time.monotonic()
        await store.wait_for_work(0.1)
        await store.wait_for_cancellation(0.1)
        await store.wait_for_outbox(0.1)
        assert time.monotonic() - started < 1.5

    # -- webhook outbox -------------------------------------------------------------------------
    async def test_finish_writes_the_outbox_row_with_the_document(self, store: Store) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        done = await store.finish(req.id, attempt, Status.COMPLETED, result=Result("answer"))
        [delivery] = await store.list_deliveries(req.id)
        assert (delivery.url, delivery.state, delivery.attempts) == (HOOK, "pending", [])
        [item] = await store.claim_outbox("d1", 10, LEASE)
        assert (item.id, item.request_id, item.url, item.attempt) == (delivery.id, req.id, HOOK, 0)
        assert item.body == to_document(done)
        assert item.body["result"]["text"] == "answer"

    async def test_cancel_writes_the_outbox_row(self, store: Store) -> None:
        req, _ = await running(store, webhook_url=HOOK)
        await store.request_cancel(req.id)
        [item] = await store.claim_outbox("d1", 10, LEASE)
        assert (item.request_id, item.body["status"]) == (req.id, "cancelled")

    async def test_no_outbox_row_without_webhook_or_on_a_stale_finish(
        self, store: Store, clock: ManualClock
    ) -> None:
        plain, attempt = await running(store)
        await store.finish(plain.id, attempt, Status.COMPLETED, result=Result("ok"))
        hooked, stale = await running(store, webhook_url=HOOK)
        clock.advance(LEASE + 1)
        await store.requeue_expired()
        with pytest.raises(LeaseLost):
            await store.finish(hooked.id, stale, Status.COMPLETED, result=Result("stale"))
        assert await store.list_deliveries(plain.id) == []
        assert await store.list_deliveries(hooked.id) == []
        assert await store.claim_outbox("d1", 10, LEASE) == []

    async def test_outbox_lease_retry_and_delivery(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
        [item] = await store.claim_outbox("d1", 10, LEASE)
        assert await store.claim_outbox("d2", 10, LEASE) == []
        clock.advance(LEASE + 1)
        [again] = await store.claim_outbox("d2", 10, LEASE)  # d1 died: its lease ran out
        assert again.id == item.id
        retrying = await store.record_attempt(
            item.id,
            status_code=503,
            error="Service Unavailable",
            duration_ms=12,
            next_attempt_at=clock.now() + 5,
        )
        assert (retrying.state, retrying.next_attempt_at, len(retrying.attempts)) == (
            "retrying",
            clock.now() + 5,
            1,
        )
        assert await store.claim_outbox("d2", 10, LEASE) == []
        clock.advance(5)
        [third] = await store.claim_outbox("d2", 10, LEASE)
        assert third.attempt == 1
        delivered = await store.record_attempt(
            item.id, status_code=204, error=None, duration_ms=7, next_attempt_at=None
        )
        assert delivered.state == "delivered"
        assert [(a.attempt, a.status_code, a.error, a.duration_ms) for a in delivered.attempts] == [
            (1, 503, "Service Unavailable", 12),
            (2, 204, None, 7),
        ]
        clock.advance(DAY)
        assert await store.claim_outbox("d3", 10, LEASE) == []
        assert await store.list_deliveries(req.id) == [delivered]

    async def test_outbox_gives_up_without_next_attempt(self, store: Store) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        await store.finish(req.id, attempt, Status.FAILED, error=ErrorInfo("E", "e"))
        [item] = await store.claim_outbox("d1", 10, LEASE)
        failed = await store.record_attempt(
            item.id, status_code=None, error="refused", duration_ms=1, next_attempt_at=None
        )
        assert (failed.state, failed.next_attempt_at) == ("failed", None)
        assert await store.claim_outbox("d1", 10, LEASE) == []

    async def test_claim_outbox_respects_limit_and_due_order(self, store: Store, clock: ManualClock) -> None:
        ids = []
        for _ in range(3):
            req, attempt = await running(store, webhook_url=HOOK)
            await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
            ids.append(req.id)
            clock.advance(1)
        assert await store.claim_outbox("d1", 0, LEASE) == []
        assert [i.request_id for i in await store.claim_outbox("d1", 2, LEASE)] == ids[:2]
        assert [i.request_id for i in await store.claim_outbox("d1", 2, LEASE)] == ids[2:]

    async def test_enqueue_redelivery(self, store: Store, clock: ManualClock) -> None:
        req, attempt = await running(store, webhook_url=HOOK)
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
        [first] = await store.claim_outbox("d1", 10, LEASE)
        await store.record_attempt(first.id, status_code=200, error=None, duration_ms=3, next_attempt_at=None)
        clock.advance(10)
        again = await store.enqueue_redelivery(req.id)
        assert (again.state, again.attempts, again.next_attempt_at) == ("pending", [], clock.now())
        assert again.id != first.id
        [item] = await store.claim_outbox("d1", 10, LEASE)
        assert (item.id, item.body["status"], item.attempt) == (again.id, "completed", 0)
        assert [d.id for d in await store.list_deliveries(req.id)] == [first.id, again.id]

    async def test_redelivery_needs_a_terminal_request_with_webhook(self, store: Store) -> None:
        running_req, _ = await running(store, webhook_url=HOOK)
        with pytest.raises(Conflict):
            await store.enqueue_redelivery(running_req.id)
        plain, attempt = await running(store)
        await store.finish(plain.id, attempt, Status.COMPLETED, result=Result("ok"))
        with pytest.raises(Conflict):
            await store.enqueue_redelivery(plain.id)
        with pytest.raises(NotFound):
            await store.enqueue_redelivery("req_nope")

    # -- purge ----------------------------------------------------------------------------------
    async def test_purge_makes_tombstones_then_drops_them(self, store: Store, clock: ManualClock) -> None:
        old, attempt = await running(store, webhook_url=HOOK)
        await store.finish(old.id, attempt, Status.COMPLETED, result=Result("secret"))
        live, _ = await running(store)
        clock.advance(100)
        fresh, _ = await store.submit(new())
        assert await store.purge_expired(result_ttl=99, tombstone_ttl=1000) == 1
        with pytest.raises(RequestExpired):
            await store.get(old.id)
        with pytest.raises(RequestExpired):
            await store.request_cancel(old.id)
        assert await store.events_since(old.id) == []
        assert await store.list_deliveries(old.id) == []
        listed = {r.id for r in (await store.list(owner=None, user_id=None)).requests}
        assert listed == {live.id, fresh.id}
        assert await store.purge_expired(result_ttl=99, tombstone_ttl=1000) == 0
        clock.advance(1001)
        assert await store.purge_expired(result_ttl=99, tombstone_ttl=1000) == 1
        with pytest.raises(NotFound):
            await store.get(old.id)
        assert (await store.get(live.id)).status is Status.PROCESSING

    async def test_past_result_ttl_every_read_expires_before_any_purge(
        self, store: Store, clock: ManualClock
    ) -> None:
        done, attempt = await running(store)
        await store.finish(done.id, attempt, Status.COMPLETED, result=Result("secret"))
        keyed, _ = await store.submit(new(), key())
        await store.request_cancel(keyed.id)
        waiting, _ = await store.submit(new())
        clock.advance(RESULT_TTL - 1)
        assert (await store.get(done.id)).result == Result("secret")
        assert (await store.submit(new(), key()))[0].id == keyed.id
        clock.advance(1)  # exactly result_ttl after they ended: expired, though no purge ran
        for request_id in (done.id, keyed.id):
            with pytest.raises(RequestExpired):
                await store.get(request_id)
        with pytest.raises(RequestExpired):  # the key's replay shows no expired result either
            await store.submit(new(), key())
        listed = [r.id for r in (await store.list(owner=None, user_id=None)).requests]
        assert listed == [waiting.id]  # an unfinished request never expires by age
        assert [
            r.id for r in (await store.list(owner=None, user_id=None, status=Status.COMPLETED)).requests
        ] == []
        assert await store.purge_expired(result_ttl=RESULT_TTL, tombstone_ttl=DAY) == 2  # the same two

    # -- readiness ------------------------------------------------------------------------------
    async def test_probe_write_commits_and_fails_once_closed(self, store: Store, reopen: Reopen) -> None:
        await store.probe_write()
        await store.probe_write()  # the one probe row, rewritten
        other = await reopen()
        await other.probe_write()
        await other.close()
        with pytest.raises(StoreUnavailable):
            await other.probe_write()

    # -- duration history, list -----------------------------------------------------------------
    async def test_duration_history_newest_first(self, store: Store, clock: ManualClock) -> None:
        for seconds, ok in ((4.0, True), (9.0, False), (2.0, True)):
            req, attempt = await running(store, agent="researcher")
            clock.advance(seconds)
            if ok:
                await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
            else:
                await store.finish(req.id, attempt, Status.FAILED, error=ErrorInfo("E", "e"))
        other, attempt = await running(store, agent="other")
        clock.advance(1)
        await store.finish(other.id, attempt, Status.COMPLETED, result=Result("ok"))
        assert await store.duration_history("researcher") == pytest.approx([2.0, 4.0])
        assert await store.duration_history("researcher", limit=1) == pytest.approx([2.0])
        assert await store.duration_history("nobody") == []

    async def test_queue_stats_of_an_empty_store(self, store: Store) -> None:
        stats = await store.queue_stats()
        assert stats.depth == {}
        assert stats.oldest_pending_at is None

    async def test_queue_stats_count_non_terminal_by_status_and_agent(
        self, store: Store, clock: ManualClock, reopen: Reopen
    ) -> None:
        created = []
        for agent in ("a", "a", "b", None, "a", "b", "a"):
            created.append((await store.submit(new(agent=agent)))[0])
            clock.advance(1)
        claims = await store.claim("w1", 4, LEASE)  # the four oldest: a, a, b, None
        assert [c.request.id for c in claims] == [r.id for r in created[:4]]
        first, second, third, _ = claims
        await store.finish(first.request.id, first.attempt, Status.COMPLETED, result=Result("ok"))
        await store.finish(second.request.id, second.attempt, Status.FAILED, error=ErrorInfo("E", "e"))
        await store.retry_later(third.request.id, third.attempt, clock.now() + 60, ErrorInfo("T", "t"))
        await store.request_cancel(created[6].id)  # pending a, cancelled: not in the queue
        expected = {("processing", "b"): 1, ("processing", None): 1, ("pending", "a"): 1, ("pending", "b"): 1}
        stats = await store.queue_stats()
        assert stats.depth == expected
        assert stats.oldest_pending_at == pytest.approx(created[4].created_at)
        other = await reopen()  # another store on the same database reads the same truth
        try:
            assert await other.queue_stats() == stats
        finally:
            await other.close()

    async def test_queue_stats_oldest_pending_ignores_processing(
        self, store: Store, clock: ManualClock
    ) -> None:
        await running(store, agent="a")
        clock.advance(5)
        later, _ = await store.submit(new(agent="a"))
        stats = await store.queue_stats()
        assert stats.oldest_pending_at == pytest.approx(later.created_at)
        assert stats.depth == {("processing", "a"): 1, ("pending", "a"): 1}

    async def test_queue_stats_stay_exact_across_many_changes(self, store: Store, clock: ManualClock) -> None:
        """More changes than a read folds at (store/queue.py FOLD_AT): totals survive each fold."""
        for round_ in range(3):
            await asyncio.gather(*(store.submit(new(agent=f"g{n % 3}")) for n in range(250)))
            claims = await store.claim("w1", 200, LEASE)
            for c in claims[:150]:
                await store.finish(c.request.id, c.attempt, Status.COMPLETED, result=Result("ok"))
            first = await store.queue_stats()  # folds
            again = await store.queue_stats()
            assert first == again
            assert sum(n for (s, _), n in first.depth.items() if s == "processing") == 50 * (round_ + 1)
            assert sum(n for (s, _), n in first.depth.items() if s == "pending") == 50 * (round_ + 1)
            clock.advance(1)

    async def test_list_filters_and_pages_newest_first(self, store: Store, clock: ManualClock) -> None:
        mine = []
        for n in range(7):
            mine.append((await store.submit(new(user_id="u1")))[0].id)
            await store.submit(new(user_id="u2"))
            await store.submit(new(owner="owner-b", user_id="u1"))
            if n % 2:
                clock.advance(1)  # some share a created_at: the id breaks ties
        seen: list[str] = []
        cursor = None
        for size in (3, 3, 1):
            page = await store.list(owner="owner-a", user_id="u1", limit=3, cursor=cursor)
            assert len(page.requests) == size
            assert all((r.owner, r.user_id) == ("owner-a", "u1") for r in page.requests)
            seen += [r.id for r in page.requests]
            cursor = page.next_cursor
        assert cursor is None
        assert sorted(seen) == sorted(mine) and len(seen) == 7
        keys = [(r.created_at, r.id) for r in [await store.get(i) for i in seen]]
        assert keys == sorted(keys, reverse=True)
        assert len((await store.list(owner=None, user_id=None, limit=100)).requests) == 21
        assert len((await store.list(owner="owner-a", user_id=None, limit=100)).requests) == 14

    async def test_list_filters_by_status(self, store: Store) -> None:
        req, _ = await store.submit(new())
        cancelled, _ = await store.submit(new())
        await store.request_cancel(cancelled.id)
        page = await store.list(owner="owner-a", user_id="u1", status=Status.CANCELLED)
        assert [r.id for r in page.requests] == [cancelled.id]
        page = await store.list(owner="owner-a", user_id="u1", status=Status.PENDING)
        assert [r.id for r in page.requests] == [req.id]

    async def test_list_items_have_no_result(self, store: Store, clock: ManualClock) -> None:
        done, _ = await in_state(store, clock, "completed")
        failed, _ = await in_state(store, clock, "failed")
        listed = {r.id: r for r in (await store.list(owner="owner-a", user_id="u1")).requests}
        assert listed[done.id].status is Status.COMPLETED and listed[done.id].result is None
        assert listed[failed.id].error == ErrorInfo("Boom", "broken")  # the rest is all there
        full = await store.get(done.id)
        assert full.result == Result("done")  # get reads it
        assert listed[done.id] == dataclasses.replace(full, result=None)

    async def test_list_rejects_a_bad_cursor(self, store: Store) -> None:
        with pytest.raises(InvalidRequest):
            await store.list(owner=None, user_id=None, cursor="not-a-cursor!")

    # -- housekeeping ---------------------------------------------------------------------------
    async def test_schema_is_current_and_migrate_is_idempotent(self, store: Store) -> None:
        assert await store.schema_current() is True
        assert await store.migrate() == []
        await store.ping()

    async def test_a_setting_is_stored_once_shared_and_kept(self, store: Store, reopen: Reopen) -> None:
        other = await reopen()  # a second store on the same database, open at the same time
        name = f"contract-{new_request_id()}"
        candidates = [f"value-{n}" for n in range(20)]
        got = await asyncio.gather(
            *(s.get_or_create_setting(name, v) for s, v in zip([store, other] * 10, candidates, strict=True))
        )
        assert len(set(got)) == 1 and got[0] in candidates  # everyone agrees on the one winner
        assert await store.get_or_create_setting(name, "too-late") == got[0]
        assert await (await reopen()).get_or_create_setting(name, "after-reopen") == got[0]
        assert await other.get_or_create_setting(f"{name}-2", "independent") == "independent"

    async def test_capability_flags_are_declared(self, store: Store) -> None:
        assert isinstance(store.cross_process_wakeups, bool)
        assert isinstance(store, Store)
