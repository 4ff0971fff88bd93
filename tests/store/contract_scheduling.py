"""The Store contract for scheduling: fair claiming, priority with aging, caps under concurrent
claimers, one turn per session, queue positions. Mixed into StoreContract, so both backends
run it unchanged. Concurrent claimers are several stores on one database claiming at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from errand.clock import ManualClock
from errand.errors import QueueFull, RateLimited, SessionBusy
from errand.models import IdempotencyKey, Limits, NewRequest, QueueInfo, Result, Status, to_document
from errand.store.base import Store

LEASE = 30.0
Reopen = Callable[[], Awaitable[Store]]


def job(rid: str, user: str = "u1", **fields: object) -> NewRequest:
    return NewRequest(id=rid, owner="owner-a", user_id=user, message="hi", **fields)  # type: ignore[arg-type]


async def queue(
    store: Store, clock: ManualClock, user: str, n: int, prefix: str, **fields: object
) -> list[str]:
    ids = []
    for i in range(n):
        req, _ = await store.submit(job(f"{prefix}{i}", user, **fields))
        ids.append(req.id)
        clock.advance(0.001)
    return ids


async def claim_ids(store: Store, n: int, limits: Limits | None = None, worker: str = "w1") -> list[str]:
    return [c.request.id for c in await store.claim(worker, n, LEASE, limits)]


async def finish(store: Store, rid: str) -> None:
    req = await store.get(rid)
    await store.finish(rid, req.attempt, Status.COMPLETED, result=Result("ok"))


async def several_claim(stores: list[Store], n: int, limits: Limits) -> list[str]:
    """Every store claims `n` at once, twice over: the ids claimed in all."""
    got: list[str] = []
    for _ in range(2):
        batches = await asyncio.gather(
            *(claim_ids(s, n, limits, worker=f"w{i}") for i, s in enumerate(stores))
        )
        got += [rid for batch in batches for rid in batch]
    return got


class SchedulingContract:
    # -- fairness -----------------------------------------------------------------------------
    async def test_a_quiet_user_is_not_stuck_behind_a_noisy_one(
        self, store: Store, clock: ManualClock
    ) -> None:
        noisy = await queue(store, clock, "noisy", 30, "n")
        quiet = await queue(store, clock, "quiet", 3, "q")
        first = await claim_ids(store, 6)
        assert set(quiet) <= set(first)  # round-robin: quiet's three come within the first six
        assert [rid for rid in first if rid.startswith("n")] == noisy[:3]  # FIFO within a key

    async def test_round_robin_holds_across_claims(self, store: Store, clock: ManualClock) -> None:
        a = await queue(store, clock, "a", 5, "a")
        b = await queue(store, clock, "b", 5, "b")
        order = [rid for _ in range(10) for rid in await claim_ids(store, 1)]
        assert [rid for rid in order if rid.startswith("a")] == a
        assert [rid for rid in order if rid.startswith("b")] == b
        # alternating: no user ever gets two turns in a row while the other waits
        assert all(order[i][0] != order[i + 1][0] for i in range(len(order) - 1))

    async def test_a_fairness_key_replaces_the_user(self, store: Store, clock: ManualClock) -> None:
        t1 = await queue(store, clock, "u1", 4, "x", fairness_key="tenant")
        t2 = await queue(store, clock, "u2", 4, "y", fairness_key="tenant")
        other = await queue(store, clock, "u3", 2, "z")
        first = await claim_ids(store, 4)
        assert set(other) <= set(first)  # the tenant is one key: its 8 requests get 2 of 4 turns
        assert [rid for rid in first if rid[0] in "xy"] == (t1 + t2)[:2]  # FIFO within the key

    async def test_weights_give_more_turns(self, store: Store, clock: ManualClock) -> None:
        await queue(store, clock, "heavy", 10, "h")
        await queue(store, clock, "light", 10, "l")
        limits = Limits(weights={"owner-a/heavy": 3.0})
        got = Counter(rid[0] for rid in await claim_ids(store, 8, limits))
        assert got == {"h": 6, "l": 2}

    async def test_fifo_mode_is_oldest_first(self, store: Store, clock: ManualClock) -> None:
        noisy = await queue(store, clock, "noisy", 5, "n")
        await queue(store, clock, "quiet", 2, "q")
        assert await claim_ids(store, 5, Limits(fair=False)) == noisy

    # -- priority -----------------------------------------------------------------------------
    async def test_priority_orders_a_users_queue(self, store: Store, clock: ManualClock) -> None:
        await store.submit(job("low", priority=5))
        await store.submit(job("mid", priority=3))
        await store.submit(job("high", priority=1))
        assert await claim_ids(store, 3) == ["high", "mid", "low"]

    async def test_waiting_requests_age_past_newer_higher_priority(
        self, store: Store, clock: ManualClock
    ) -> None:
        await store.submit(job("old-low", priority=5, aging_seconds=10.0))
        clock.advance(41.0)  # four levels of aging (4 x 10 s) and then some
        await store.submit(job("new-high", priority=1, aging_seconds=10.0))
        assert await claim_ids(store, 2) == ["old-low", "new-high"]

    async def test_priority_stays_within_fairness(self, store: Store, clock: ManualClock) -> None:
        await queue(store, clock, "bulk", 5, "b", priority=5)
        await queue(store, clock, "vip", 5, "v", priority=1)
        first = Counter(rid[0] for rid in await claim_ids(store, 4))
        assert first == {"b": 2, "v": 2}  # priority orders a key's queue, not the users

    # -- caps, under concurrent claimers --------------------------------------------------------
    async def test_per_user_cap_holds_across_claimers(
        self, store: Store, reopen: Reopen, clock: ManualClock
    ) -> None:
        await queue(store, clock, "capped", 10, "c")
        others = await queue(store, clock, "free", 2, "f")
        limits = Limits(max_running_per_user=2)
        got = await several_claim([store, await reopen(), await reopen()], 4, limits)
        assert len(set(got)) == len(got)
        assert Counter(rid[0] for rid in got) == {"c": 2, "f": 2}
        assert set(others) <= set(got)
        info = await store.queue_info(await store.get("c5"), limits)
        assert info.waiting_on == "user_limit"
        done = next(rid for rid in got if rid.startswith("c"))
        await finish(store, done)
        assert [rid[0] for rid in await claim_ids(store, 4, limits)] == ["c"]  # one slot freed

    async def test_formation_cap_holds_across_claimers(
        self, store: Store, reopen: Reopen, clock: ManualClock
    ) -> None:
        for user in ("a", "b", "c"):
            await queue(store, clock, user, 4, user)
        limits = Limits(max_running=5)
        got = await several_claim([store, await reopen(), await reopen()], 3, limits)
        assert len(got) == 5 and len(set(got)) == 5
        assert (await store.queue_info(await store.get("a3"), limits)).waiting_on == "formation_limit"

    async def test_agent_cap_holds_across_claimers(
        self, store: Store, reopen: Reopen, clock: ManualClock
    ) -> None:
        await queue(store, clock, "a", 4, "s", agent="slow")
        await queue(store, clock, "b", 4, "t", agent="slow")
        fast = await queue(store, clock, "c", 2, "f", agent="fast")
        limits = Limits(agent_caps={"slow": 3})
        got = await several_claim([store, await reopen()], 4, limits)
        assert len(set(got)) == len(got)
        assert Counter("slow" if rid[0] in "st" else "fast" for rid in got) == {"slow": 3, "fast": 2}
        assert set(fast) <= set(got)
        assert (await store.queue_info(await store.get("s3"), limits)).waiting_on == "agent_limit"

    async def test_queued_count_is_bounded_by_its_cap(self, store: Store, clock: ManualClock) -> None:
        await queue(store, clock, "u1", 7, "q")
        assert await store.queued_count("owner-a", "u1", 5) == 5
        assert await store.queued_count("owner-a", "u1", 100) == 7
        assert await store.queued_count("owner-a", "nobody", 5) == 0

    async def test_queue_cap_is_exact_under_concurrent_submits(
        self, store: Store, reopen: Reopen, clock: ManualClock
    ) -> None:
        stores = [store, await reopen(), await reopen()]
        cap, n = 5, 30
        outcomes = await asyncio.gather(
            *(stores[i % 3].submit(job(f"k{i}", "capped", max_queued=cap)) for i in range(n)),
            return_exceptions=True,
        )
        made = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(made) == cap and len(refused) == n - cap
        assert all(type(o) is QueueFull and isinstance(o, RateLimited) for o in refused)  # 429
        assert refused[0].details == {"max_queued_per_user": cap}
        assert await store.queued_count("owner-a", "capped", 100) == cap
        other, _ = await store.submit(job("free", "other", max_queued=cap))  # per user
        assert other.id == "free"

    async def test_queue_cap_counts_only_pending(self, store: Store, clock: ManualClock) -> None:
        key = IdempotencyKey(key="k", scope="owner-a/u1/chat", fingerprint="f")
        first, _ = await store.submit(job("p0", max_queued=2), key)
        await store.submit(job("p1", max_queued=2))
        with pytest.raises(QueueFull):
            await store.submit(job("p2", max_queued=2))
        replay, created = await store.submit(job("p3", max_queued=2), key)
        assert (replay.id, created) == (first.id, False)  # a replay is never refused
        await claim_ids(store, 1)  # one of the two leaves the queue
        made, _ = await store.submit(job("p4", max_queued=2, session_id="s"))
        assert made.id == "p4"
        with pytest.raises(QueueFull):
            await store.submit(job("p5", max_queued=2, session_id="s"))

    async def test_queue_position_counts_rounds(self, store: Store, clock: ManualClock) -> None:
        await queue(store, clock, "noisy", 10, "n")
        await queue(store, clock, "quiet", 1, "q")
        noisy = await store.queue_info(await store.get("n9"), Limits())
        quiet = await store.queue_info(await store.get("q0"), Limits())
        assert noisy.waiting_on == quiet.waiting_on == "worker"
        assert quiet.queue_position is not None and noisy.queue_position is not None
        assert quiet.queue_position <= 2 < noisy.queue_position  # quiet goes next; noisy's tenth waits
        await claim_ids(store, 2)
        assert await store.queue_info(await store.get("q0"), Limits()) == QueueInfo(None, None)  # running

    # -- one turn per session -------------------------------------------------------------------
    async def test_session_enqueue_runs_one_at_a_time_in_order(
        self, store: Store, clock: ManualClock
    ) -> None:
        for rid in ("s1", "s2", "s3"):
            await store.submit(job(rid, session_id="chat"))
            clock.advance(0.001)
        assert (await store.get("s2")).waiting_on == "session"
        assert (await store.queue_info(await store.get("s3"), Limits())).waiting_on == "session"
        assert await claim_ids(store, 5) == ["s1"]
        await finish(store, "s1")
        assert await claim_ids(store, 5) == ["s2"]
        await store.request_cancel("s2")  # a cancel ends the turn too
        assert await claim_ids(store, 5) == ["s3"]

    async def test_a_held_request_cancelled_does_not_release_the_session(
        self, store: Store, clock: ManualClock
    ) -> None:
        await store.submit(job("s1", session_id="chat"))
        await store.submit(job("s2", session_id="chat"))
        await store.submit(job("s3", session_id="chat"))
        assert await claim_ids(store, 5) == ["s1"]
        await store.request_cancel("s2")
        assert await claim_ids(store, 5) == []  # s1 still runs: s3 waits for it
        await finish(store, "s1")
        assert await claim_ids(store, 5) == ["s3"]

    async def test_session_reject_names_the_active_request(self, store: Store) -> None:
        await store.submit(job("s1", session_id="chat"))
        with pytest.raises(SessionBusy) as caught:
            await store.submit(job("s2", session_id="chat", on_busy="reject"))
        assert caught.value.details == {"active_request_id": "s1"}
        with pytest.raises(Exception):  # noqa: B017 - s2 was never stored
            await store.get("s2")
        other, _ = await store.submit(job("o1", session_id="another", on_busy="reject"))
        assert other.waiting_on is None

    async def test_session_interrupt_supersedes_the_running_one(self, store: Store) -> None:
        await store.submit(job("s1", session_id="chat"))
        await store.submit(job("s2", session_id="chat"))
        assert await claim_ids(store, 5) == ["s1"]
        new, _ = await store.submit(job("s3", session_id="chat", on_busy="interrupt"))
        assert new.waiting_on is None
        for rid in ("s1", "s2"):
            old = await store.get(rid)
            assert old.status is Status.CANCELLED
            assert to_document(old)["cancel_reason"] == "superseded"
        assert await store.cancelled_among(["s1"]) == {"s1"}  # the running attempt must stop
        assert await claim_ids(store, 5) == ["s3"]

    async def test_concurrent_session_submits_take_one_turn(self, store: Store, reopen: Reopen) -> None:
        stores = [store, await reopen(), await reopen()]
        made = await asyncio.gather(
            *(s.submit(job(f"c{i}", session_id="race")) for i, s in enumerate(stores * 2))
        )
        assert sum(req.waiting_on is None for req, _ in made) == 1
        order = []
        for _ in range(len(made)):
            got = await claim_ids(store, 5)
            assert len(got) == 1
            order += got
            await finish(store, got[0])
        assert sorted(order) == sorted(req.id for req, _ in made)
