"""The console's store guarantees (sessions; the dashboard reads), part of the Store contract run
unchanged against every backend (the backends' test classes inherit these tests)."""

from __future__ import annotations

from errand.clock import ManualClock
from errand.console_models import ConsoleSession, CountRow, DeliveryHealth, Match
from errand.models import ErrorInfo, Progress, Result, Status
from errand.store.base import Store
from errand.store.queue import FOLD_AT
from errand.store.rollup import bucket_upper
from tests.store.contract import HOOK, LEASE, RESULT_TTL, Reopen, new, running


def session(
    clock: ManualClock, id_hash: str = "h" * 64, ttl: float = 600.0, role: str = "admin"
) -> ConsoleSession:
    now = clock.now()
    return ConsoleSession(id_hash, "key-fingerprint1", role, "csrf-token-1", now, now + ttl)


class ConsoleSessionContract:
    """create/get/delete/purge of console sessions."""

    async def test_a_session_reads_back_whole_and_survives_reopen(
        self, store: Store, clock: ManualClock, reopen: Reopen
    ) -> None:
        made = session(clock, role="viewer")
        await store.create_session(made)
        assert await store.get_session(made.id_hash) == made
        again = await reopen()
        assert await again.get_session(made.id_hash) == made

    async def test_unknown_and_expired_sessions_are_none(self, store: Store, clock: ManualClock) -> None:
        made = session(clock, ttl=60)
        await store.create_session(made)
        assert await store.get_session("x" * 64) is None
        clock.advance(59)
        assert await store.get_session(made.id_hash) == made
        clock.advance(1)  # expires_at <= now: dead at once, before any purge
        assert await store.get_session(made.id_hash) is None

    async def test_delete_revokes_for_another_store_on_the_same_database(
        self, store: Store, clock: ManualClock, reopen: Reopen
    ) -> None:
        made = session(clock)
        await store.create_session(made)
        other = await reopen()
        assert await other.get_session(made.id_hash) == made
        assert await store.delete_session(made.id_hash) is True
        assert await other.get_session(made.id_hash) is None
        assert await store.delete_session(made.id_hash) is False

    async def test_purge_console_drops_only_expired_sessions(self, store: Store, clock: ManualClock) -> None:
        short, long = session(clock, "a" * 64, ttl=60), session(clock, "b" * 64, ttl=3600)
        await store.create_session(short)
        await store.create_session(long)
        assert await store.purge_console() == 0
        clock.advance(120)
        assert await store.purge_console() == 1
        clock.advance(-120)  # the row itself is gone, not just hidden by the clock
        assert await store.get_session(short.id_hash) is None
        assert await store.get_session(long.id_hash) == long


def tally(counts: tuple[CountRow, ...]) -> dict[tuple[str, str | None, str | None], int]:
    return {(c.status, c.agent, c.user_id): c.n for c in counts}


class ConsoleReadsContract:
    """The list's filters, the overview's counts and rollup, both backends alike."""

    async def test_list_filters_combine_with_and_and_paginate(self, store: Store, clock: ManualClock) -> None:
        made = []
        for i in range(12):
            agent, kind = ("a", "chat") if i % 2 else ("b", "trigger")
            req, _ = await store.submit(new(agent=agent, kind=kind, user_id=f"u{i % 3}"))
            made.append(req)
            clock.advance(10)
        newest_first = [r.id for r in reversed(made)]
        page = await store.list(owner=None, user_id=None, match=Match(agent="a"))
        assert [r.id for r in page.requests] == [i for i in newest_first if i in {m.id for m in made[1::2]}]
        page = await store.list(owner=None, user_id="u0", match=Match(kind="trigger"))
        assert {r.id for r in page.requests} == {
            m.id for m in made if m.kind == "trigger" and m.user_id == "u0"
        }
        since, until = made[3].created_at, made[8].created_at
        page = await store.list(owner=None, user_id=None, match=Match(since=since, until=until))
        assert [r.id for r in page.requests] == [m.id for m in reversed(made[3:8])]
        seen, cursor = [], None
        while True:
            page = await store.list(owner=None, user_id=None, limit=2, cursor=cursor, match=Match(agent="b"))
            seen += [r.id for r in page.requests]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [i for i in newest_first if i in {m.id for m in made[0::2]}]
        page = await store.list(owner=None, user_id=None, status=Status.COMPLETED, match=Match(agent="a"))
        assert page.requests == []

    async def test_counts_follow_every_change_and_purge(self, store: Store, clock: ManualClock) -> None:
        for agent, user in (("a", "u1"), ("a", "u1"), ("a", "u2"), ("b", "u1")):
            await store.submit(new(agent=agent, user_id=user))
        assert tally(await store.console_counts()) == {
            ("pending", "a", "u1"): 2,
            ("pending", "a", "u2"): 1,
            ("pending", "b", "u1"): 1,
        }
        claims = await store.claim("w1", 2, LEASE)
        first, second = claims
        await store.finish(first.request.id, first.attempt, Status.COMPLETED, result=Result("ok"))
        await store.finish(second.request.id, second.attempt, Status.FAILED, error=ErrorInfo("E", "e"))
        counts = tally(await store.console_counts())
        assert sum(n for (s, _, _), n in counts.items() if s == "pending") == 2
        assert sum(n for (s, _, _), n in counts.items() if s == "completed") == 1
        assert all(u is None for (s, _, u) in counts if s in ("completed", "failed"))
        clock.advance(RESULT_TTL + 1)
        await store.purge_expired(RESULT_TTL, 30 * 86400)  # the finished ones become tombstones
        counts = tally(await store.console_counts())
        assert {s for (s, _, _) in counts} == {"pending"}

    async def test_counts_survive_folding(self, store: Store) -> None:
        for i in range(FOLD_AT // 2 + 10):  # each submit + cancel appends two count rows
            req, _ = await store.submit(new(agent="a"))
            if i % 2:
                await store.request_cancel(req.id)
        total = FOLD_AT // 2 + 10
        expected = {("pending", "a", "u1"): total - total // 2, ("cancelled", "a", None): total // 2}
        assert tally(await store.console_counts()) == expected  # over FOLD_AT rows: folded after
        assert tally(await store.console_counts()) == expected

    async def test_overview_running_rollup_deliveries_and_workers(
        self, store: Store, clock: ManualClock
    ) -> None:
        await store.register_worker("w1")
        run, attempt = await running(store, agent="a", webhook_url=HOOK)
        await store.append_event(run.id, attempt, "progress", {"percent": 40}, Progress(40.0, "working"))
        clock.advance(1)
        other, other_attempt = await running(store, agent="a")
        seen = await store.overview()
        [first, second] = seen.running
        assert (first.request.id, second.request.id) == (other.id, run.id)  # newest first
        assert second.worker_id == "w1" and second.request.progress == Progress(40.0, "working")
        assert [(w.worker_id, w.running) for w in seen.workers] == [("w1", 2)]
        assert seen.workers[0].leases_until == clock.now() + LEASE  # the newer claim's
        clock.advance(0.5)
        assert await store.heartbeat("w1", {run.id: attempt}, LEASE) == set()
        [renewed] = (await store.overview()).workers
        assert renewed.leases_until == clock.now() + LEASE  # the heartbeat moved it
        clock.advance(1.5)
        await store.finish(run.id, attempt, Status.COMPLETED, result=Result("ok"))
        await store.finish(other.id, other_attempt, Status.FAILED, error=ErrorInfo("E", "e"))
        seen = await store.overview()
        assert seen.running == () and seen.deliveries.pending == 1
        assert [(w.running, w.leases_until) for w in seen.workers] == [(0, None)]
        by_status = {m.status: m for m in seen.minutes}
        assert set(by_status) == {"completed", "failed"} and all(
            m.agent == "a" and m.n == 1 for m in seen.minutes
        )
        assert by_status["completed"].minute == int(clock.now() // 60) * 60
        done = by_status["completed"].bucket  # it ran 3 s: claimed, 1 s, then 2 s more
        assert bucket_upper(done - 1) < 3.0 <= bucket_upper(done)
        [item] = await store.claim_outbox("d1", 1, LEASE)
        await store.record_attempt(item.id, status_code=200, error=None, duration_ms=5, next_attempt_at=None)
        seen = await store.overview()
        assert seen.deliveries == DeliveryHealth(0, 0, 1, 0)
        clock.advance(3700)  # out of the window: the rollup and the attempts are of the last hour
        seen = await store.overview()
        assert seen.minutes == () and seen.deliveries == DeliveryHealth(0, 0, 0, 0)
        assert seen.oldest_pending_at is None

    async def test_purge_console_drops_rollup_minutes_older_than_a_day(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, attempt = await running(store, agent="a")
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
        clock.advance(86400 + 120)
        assert await store.purge_console() == 1
        clock.advance(-(86400 + 120))
        assert (await store.overview()).minutes == ()

    async def test_deliveries_across_requests_by_state_newest_first(
        self, store: Store, clock: ManualClock
    ) -> None:
        ids = []
        for code in (200, 500, None):  # delivered; failed; pending (never tried)
            req, attempt = await running(store, webhook_url=HOOK)
            await store.finish(req.id, attempt, Status.COMPLETED, result=Result("ok"))
            ids.append(req.id)
            clock.advance(1)
            if code is not None:
                [item] = await store.claim_outbox("d1", 1, LEASE)
                await store.record_attempt(
                    item.id, status_code=code, error=None, duration_ms=3, next_attempt_at=None
                )
        every = await store.list_all_deliveries(None, 50, None)
        assert [d.request_id for d in every.deliveries] == ids[::-1] and every.next_cursor is None
        [failed] = (await store.list_all_deliveries("failed", 50, None)).deliveries
        assert failed.request_id == ids[1] and [a.status_code for a in failed.attempts] == [500]
        [pending] = (await store.list_all_deliveries("pending", 50, None)).deliveries
        assert pending.request_id == ids[2] and pending.attempts == []
        first = await store.list_all_deliveries(None, 2, None)
        assert first.next_cursor is not None
        rest = await store.list_all_deliveries(None, 2, first.next_cursor)
        assert [d.request_id for d in first.deliveries + rest.deliveries] == ids[::-1]
        assert await store.failed_deliveries_matching(10) == (1, [ids[1]])
        await store.enqueue_redelivery(ids[1])  # its latest delivery is no longer the failed one
        assert await store.failed_deliveries_matching(10) == (0, [])

    async def test_queued_matching_counts_the_queue_only(self, store: Store, clock: ManualClock) -> None:
        made = []
        for agent in ("a", "a", "b", "a"):
            made.append((await store.submit(new(agent=agent)))[0])
            clock.advance(1)
        await store.request_cancel(made[3].id)
        assert await store.queued_matching(None, None, Match(agent="a"), 10) == (2, [made[0].id, made[1].id])
        assert await store.queued_matching(None, None, Match(agent="a"), 1) == (2, [made[0].id])
        assert await store.queued_matching(Status.CANCELLED, None, Match(), 10) == (0, [])
        assert await store.queued_matching(None, "nobody", Match(), 10) == (0, [])
        assert (await store.queued_matching(Status.PENDING, "u1", Match(since=made[1].created_at), 10))[
            0
        ] == 2
