"""PostgresStore: the shared Store contract, plus what only a multi-process backend promises.

Two store instances on one database stand in for two processes: each has its own pool and its
own LISTEN connection, so a wake-up seen by B for a write made through A crossed PostgreSQL.
Cross-process waits are measured with a poll_interval far longer than the bound asserted, so
only a notification can satisfy them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from errand.clock import ManualClock, new_request_id
from errand.errors import ConfigError, Conflict, InvalidRequest, LeaseLost, StoreUnavailable
from errand.models import ErrorInfo, Event, NewRequest, Request, Result, Status
from errand.store import open_store
from errand.store.base import Store
from errand.store.postgres import PostgresStore, sql
from errand.store.postgres.sql import CH_CHANGE, CH_WORK
from tests.store.contract import HOOK, LEASE, RESULT_TTL, StoreContract, new, running
from tests.store.contract_attempts import AttemptLogContract
from tests.store.contract_console import ConsoleReadsContract, ConsoleSessionContract
from tests.store.contract_forget import ForgetContract
from tests.store.contract_inputs import InputContract
from tests.store.contract_schedules import ScheduleContract
from tests.store.contract_webhooks import WebhookContract
from tests.support.pg_fixtures import StoreFactory, admin

pytestmark = pytest.mark.postgres

SLOW_POLL = 30.0
"""poll_interval of the waiting store in cross-process tests: only NOTIFY can wake it in time."""
FAST = 0.5
"""Generous bound on a cross-process wake-up (typically a few milliseconds)."""


@pytest.fixture
async def store(pg_stores: StoreFactory) -> Store:
    return await pg_stores(poll_interval=0.2, result_ttl=RESULT_TTL)


@pytest.fixture
async def reopen(pg_stores: StoreFactory) -> Callable[[], Awaitable[Store]]:
    async def again() -> Store:
        return await pg_stores(poll_interval=0.2, result_ttl=RESULT_TTL)

    return again


class TestPostgresSchedules(ScheduleContract):
    """The schedule contract, unchanged."""


class TestPostgresStore(
    StoreContract,
    AttemptLogContract,
    InputContract,
    ConsoleSessionContract,
    ConsoleReadsContract,
    WebhookContract,
    ForgetContract,
):
    """The contract, unchanged."""


# -- helpers ------------------------------------------------------------------------------------
async def pair(pg_stores: StoreFactory) -> tuple[PostgresStore, PostgresStore]:
    """Two "processes": A writes, B waits (and polls too rarely to matter)."""
    return await pg_stores(), await pg_stores(poll_interval=SLOW_POLL)


async def woken_within(waiter: asyncio.Task[object], write: Awaitable[object]) -> float:
    """Seconds from the start of `write` until `waiter` finished (it must still be waiting)."""
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await write
    await asyncio.wait_for(waiter, 5)
    return time.monotonic() - started


async def backends(dsn: str, application: str) -> list[int]:
    """Server pids of this database's connections opened by `application`."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 "
            "AND pid <> pg_backend_pid()",
            application,
        )
        return [row["pid"] for row in rows]
    finally:
        await conn.close()


async def terminate(dsn: str, pids: list[int]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await conn.close()


async def lock_waiters(dsn: str) -> int:
    """How many of this database's store connections are waiting for a lock."""
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'errand' AND wait_event_type = 'Lock'"
        )
        return count
    finally:
        await conn.close()


async def eventually_async(count: Callable[[], Awaitable[int]], expected: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := await count()) != expected:
        assert time.monotonic() < deadline, f"expected {expected}, still {seen}"
        await asyncio.sleep(0.02)


async def count(requeue: Callable[[], Awaitable[list[Request]]]) -> int:
    """How many requests a requeue took back."""
    return len(await requeue())


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# -- cross-process wake-ups -----------------------------------------------------------------------
async def test_submit_on_a_wakes_wait_for_work_on_b(pg_stores: StoreFactory) -> None:
    a, b = await pair(pg_stores)
    await b.wait_for_work(0)
    elapsed = await woken_within(asyncio.create_task(b.wait_for_work(10)), a.submit(new()))
    assert elapsed < FAST


async def test_finish_on_a_wakes_wait_for_change_on_b(pg_stores: StoreFactory) -> None:
    a, b = await pair(pg_stores)
    req, _ = await a.submit(new())
    [claim] = await a.claim("w1", 1, LEASE)
    waiter = asyncio.create_task(b.wait_for_change(req.id, claim.request.seq, timeout=10))
    elapsed = await woken_within(
        waiter, a.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("ok"))
    )
    assert waiter.result() is True and elapsed < FAST
    assert (await b.get(req.id)).status is Status.COMPLETED


async def test_cancel_on_a_wakes_wait_for_cancellation_on_b(pg_stores: StoreFactory) -> None:
    a, b = await pair(pg_stores)
    req, _ = await a.submit(new())
    [claim] = await b.claim("w-on-b", 1, LEASE)
    await b.wait_for_cancellation(0)
    elapsed = await woken_within(asyncio.create_task(b.wait_for_cancellation(10)), a.request_cancel(req.id))
    assert elapsed < FAST
    assert await b.cancelled_among([req.id]) == {req.id}
    with pytest.raises(LeaseLost):
        await b.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("too late"))


async def test_terminal_write_on_a_wakes_wait_for_outbox_on_b(pg_stores: StoreFactory) -> None:
    a, b = await pair(pg_stores)
    req, _ = await a.submit(new(webhook_url=HOOK))
    [claim] = await a.claim("w1", 1, LEASE)
    await b.wait_for_outbox(0)
    waiter = asyncio.create_task(b.wait_for_outbox(10))
    elapsed = await woken_within(
        waiter, a.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("ok"))
    )
    assert elapsed < FAST
    assert [item.request_id for item in await b.claim_outbox("d1", 10, LEASE)] == [req.id]


async def test_wait_for_change_on_b_sees_every_event_of_a(pg_stores: StoreFactory) -> None:
    a, b = await pair(pg_stores)
    req, _ = await a.submit(new())
    [claim] = await a.claim("w1", 1, LEASE)
    seq = claim.request.seq
    for n in range(5):
        waiter = asyncio.create_task(b.wait_for_change(req.id, seq, timeout=10))
        event = await a.append_event(req.id, claim.attempt, "content", {"text": str(n)})
        assert await asyncio.wait_for(waiter, FAST * 2) is True
        seq = event.seq
    assert [e.seq for e in await b.events_since(req.id, after_seq=claim.request.seq)] == [3, 4, 5, 6, 7]


async def test_change_channel_is_listened_only_once_a_change_is_awaited(pg_stores: StoreFactory) -> None:
    """A worker process never waits for changes, so it gets none of the per-write notifications
    (their cost grew with every worker added); the first waiter subscribes and is woken."""
    a, b = await pair(pg_stores)
    req, _ = await a.submit(new())
    [claim] = await a.claim("w1", 1, LEASE)
    assert CH_CHANGE not in b.listener.channels and CH_WORK in b.listener.channels
    waiter = asyncio.create_task(b.wait_for_change(req.id, claim.request.seq, timeout=SLOW_POLL))
    await eventually(lambda: CH_CHANGE in b.listener.channels)
    elapsed = await woken_within(waiter, a.append_event(req.id, claim.attempt, "progress", {}))
    assert waiter.result() is True and elapsed < FAST


# -- many processes, one queue ----------------------------------------------------------------------
async def test_claims_from_two_stores_never_overlap(pg_stores: StoreFactory) -> None:
    a, b = await pg_stores(pool_size=10), await pg_stores(pool_size=10)
    submitted = await asyncio.gather(*(a.submit(new()) for _ in range(500)))
    expected = {req.id for req, _ in submitted}

    async def claimer(store: PostgresStore, name: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim(name, 7, LEASE):
            assert all(c.attempt == 1 and c.request.status is Status.PROCESSING for c in batch)
            got += [c.request.id for c in batch]
        return got

    results = await asyncio.gather(*(claimer(s, f"{s is a}-{n}") for s in (a, b) for n in range(6)))
    claimed = [rid for got in results for rid in got]
    assert len(claimed) == len(set(claimed)) == 500
    assert set(claimed) == expected
    assert all(results[:6]) and all(results[6:]), "both stores should have claimed some"


async def test_fencing_holds_across_stores(pg_stores: StoreFactory, clock: ManualClock) -> None:
    a, b = await pg_stores(), await pg_stores()
    req, _ = await a.submit(new())
    [stale] = await a.claim("worker-a", 1, LEASE)
    clock.advance(LEASE + 1)
    assert len(await b.requeue_expired()) == 1
    [fresh] = await b.claim("worker-b", 1, LEASE)
    assert fresh.attempt == stale.attempt + 1
    with pytest.raises(LeaseLost):
        await a.finish(req.id, stale.attempt, Status.COMPLETED, result=Result("stale"))
    assert await a.heartbeat("worker-a", {req.id: stale.attempt}, LEASE) == {req.id}
    done = await b.finish(req.id, fresh.attempt, Status.COMPLETED, result=Result("fresh"))
    assert (await a.get(req.id)).result == done.result == Result("fresh")


async def test_concurrent_requeue_touches_each_request_once(
    pg_stores: StoreFactory, clock: ManualClock
) -> None:
    stores = [await pg_stores() for _ in range(3)]
    for _ in range(30):
        await stores[0].submit(new())
    assert len(await stores[0].claim("w1", 30, LEASE)) == 30
    clock.advance(LEASE + 1)
    counts = await asyncio.gather(*(s.requeue_expired() for s in stores for _ in range(3)))
    assert sum(len(c) for c in counts) == 30  # each taken back once, by one of them
    assert len({r.id for c in counts for r in c}) == 30
    page = await stores[1].list(owner=None, user_id=None, limit=100)
    assert {(r.failures, r.status) for r in page.requests} == {(1, Status.PROCESSING)}


# -- group commit of submits -----------------------------------------------------------------------
async def test_concurrent_submits_share_commits_but_keep_their_own_outcome(store: Store) -> None:
    taken, _ = await store.submit(new("req_taken"))
    specs = [new() for _ in range(50)] + [new("req_taken"), new("req_twice"), new("req_twice")]
    outcomes = await asyncio.gather(*(store.submit(spec) for spec in specs), return_exceptions=True)
    created = [o for o in outcomes if isinstance(o, tuple)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(created) == 51 and len(conflicts) == 2 and len(outcomes) == 53
    assert {req.id for req, _ in created} == {s.id for s in specs} - {"req_taken"}
    assert await store.get("req_taken") == taken
    for req, was_created in created:
        assert was_created and await store.get(req.id) == req
        assert [e.type for e in await store.events_since(req.id)] == ["created"]


async def test_one_bad_value_fails_only_its_own_submit(store: Store) -> None:
    good = [new() for _ in range(10)]
    bad = new(message="nul \x00 byte")
    outcomes = await asyncio.gather(*(store.submit(s) for s in [*good, bad]), return_exceptions=True)
    assert isinstance(outcomes[-1], InvalidRequest)
    assert all(isinstance(o, tuple) and o[1] for o in outcomes[:-1])
    assert {r.id for r in (await store.list(owner=None, user_id=None)).requests} == {s.id for s in good}


async def test_concurrent_finishes_of_one_request_fence_the_stale_attempt(
    store: Store, clock: ManualClock
) -> None:
    req, stale = await running(store)
    clock.advance(LEASE + 1)
    assert len(await store.requeue_expired()) == 1
    [fresh] = await store.claim("w2", 1, LEASE)
    other, other_attempt = await running(store, webhook_url=HOOK)
    outcomes = await asyncio.gather(
        store.finish(req.id, stale, Status.COMPLETED, result=Result("stale")),
        store.finish(req.id, fresh.attempt, Status.COMPLETED, result=Result("fresh")),
        store.finish(other.id, other_attempt, Status.FAILED, error=ErrorInfo("E", "e")),
        store.finish(req.id, fresh.attempt, Status.COMPLETED, result=Result("again")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], LeaseLost) and isinstance(outcomes[3], LeaseLost)
    assert isinstance(outcomes[1], Request) and outcomes[1].result == Result("fresh")
    assert isinstance(outcomes[2], Request) and outcomes[2].status is Status.FAILED
    assert await store.get(req.id) == outcomes[1]
    assert [e.type for e in await store.events_since(req.id)][-1] == "completed"
    assert [d.request_id for d in await store.list_deliveries(other.id)] == [other.id]


async def test_concurrent_appends_keep_call_order_and_fence_each(store: Store) -> None:
    req, attempt = await running(store)
    other, other_attempt = await running(store)
    await store.finish(other.id, other_attempt, Status.COMPLETED, result=Result("done"))
    calls = [store.append_event(req.id, attempt, "content", {"n": n}) for n in range(20)]
    calls.append(store.append_event(other.id, other_attempt, "content", {"n": "late"}))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(outcomes[-1], LeaseLost)
    events = await store.events_since(req.id, after_seq=2)
    assert [e.data["n"] for e in events] == list(range(20))
    assert (
        [e.seq for e in events]
        == [o.seq for o in outcomes[:-1] if isinstance(o, Event)]
        == list(range(3, 23))
    )


async def test_one_bad_result_fails_only_its_own_finish(store: Store) -> None:
    held = [await running(store) for _ in range(5)]
    results = [Result("ok"), Result("ok"), Result("nul \x00 byte"), Result("ok"), Result("ok")]
    outcomes = await asyncio.gather(
        *(
            store.finish(r.id, a, Status.COMPLETED, result=res)
            for (r, a), res in zip(held, results, strict=True)
        ),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], InvalidRequest)
    assert [isinstance(o, Request) for o in outcomes] == [True, True, False, True, True]
    assert (await store.get(held[2][0].id)).status is Status.PROCESSING  # still its worker's to finish


async def test_close_flushes_queued_submits(pg_stores: StoreFactory) -> None:
    store, reader = await pg_stores(), await pg_stores()
    pending = [asyncio.create_task(store.submit(new())) for _ in range(30)]
    await asyncio.sleep(0)  # queued, flushes started
    await store.close()
    done = [await task for task in pending]
    for req, created in done:
        assert created and await reader.get(req.id) == req


# -- connections lost -----------------------------------------------------------------------------
async def test_killed_pool_connections_recover_or_raise_store_unavailable(
    pg_stores: StoreFactory, pg_url: str
) -> None:
    store = await pg_stores(pool_size=4)
    await asyncio.gather(*(store.submit(new()) for _ in range(20)))  # open several pool connections
    pids = await backends(pg_url, "errand")
    assert pids

    accepted: list[str] = []
    failures: list[BaseException] = []

    async def submit_one() -> None:
        try:
            req, _ = await store.submit(new())
            accepted.append(req.id)
        except StoreUnavailable as exc:
            failures.append(exc)

    load = [asyncio.create_task(submit_one()) for _ in range(200)]
    await asyncio.sleep(0)
    await terminate(pg_url, pids)
    await asyncio.gather(*load)  # anything but StoreUnavailable would raise here
    assert len(accepted) + len(failures) == 200
    assert all(isinstance(e, StoreUnavailable) and e.transient for e in failures)
    for request_id in accepted:  # every accepted submit is really there
        assert (await store.get(request_id)).status is Status.PENDING
    await store.ping()
    after, created = await store.submit(new())
    assert created and (await store.get(after.id)) == after


async def test_statements_cut_off_mid_flight(pg_stores: StoreFactory, pg_url: str) -> None:
    """A write whose connection dies mid-statement raises StoreUnavailable and wrote nothing; a
    read is retried once on a fresh connection and answers."""
    store = await pg_stores(pool_size=4)
    req, _ = await store.submit(new())
    blocker = await asyncpg.connect(pg_url)
    lock = blocker.transaction()
    await lock.start()
    await blocker.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")  # every store statement waits
    write = asyncio.create_task(store.request_cancel(req.id))
    read = asyncio.create_task(store.get(req.id))
    try:
        await eventually_async(lambda: lock_waiters(pg_url), 2)
        await terminate(pg_url, await backends(pg_url, "errand"))
        with pytest.raises(StoreUnavailable):
            await write
        await eventually_async(lambda: lock_waiters(pg_url), 1)  # the read, again, on a new connection
        assert not read.done()
    finally:
        await lock.rollback()
        await blocker.close()
    assert await read == req
    assert (await store.get(req.id)).status is Status.PENDING  # the cut-off cancel wrote nothing
    assert (await store.request_cancel(req.id))[0].status is Status.CANCELLED


async def test_idle_pool_connection_killed_is_replaced_transparently(
    pg_stores: StoreFactory, pg_url: str
) -> None:
    store = await pg_stores(pool_size=1)
    req, _ = await store.submit(new())
    await terminate(pg_url, await backends(pg_url, "errand"))
    await asyncio.sleep(0.1)  # the client sees the socket close
    assert (await store.get(req.id)) == req  # reads retry once on a fresh connection
    assert (await store.submit(new()))[1] is True


async def test_listener_reconnects_and_wakes_again(pg_stores: StoreFactory, pg_url: str) -> None:
    a, b = await pair(pg_stores)
    first_pid = b.listener.backend_pid
    assert first_pid is not None and b.listener.connects == 1
    await terminate(pg_url, [first_pid])
    await eventually(lambda: b.listener.connects == 2 and b.listener.backend_pid is not None)
    assert b.listener.backend_pid != first_pid
    await b.wait_for_work(0)  # a reconnect wakes everyone once (notifications may have been missed)
    elapsed = await woken_within(asyncio.create_task(b.wait_for_work(10)), a.submit(new()))
    assert elapsed < FAST


async def test_waiters_are_woken_when_the_listener_drops(pg_stores: StoreFactory, pg_url: str) -> None:
    _, b = await pair(pg_stores)
    await b.wait_for_work(0)
    waiter = asyncio.create_task(b.wait_for_work(20))
    await asyncio.sleep(0.05)
    pid = b.listener.backend_pid
    assert pid is not None and not waiter.done()
    started = time.monotonic()
    await terminate(pg_url, [pid])
    await asyncio.wait_for(waiter, 5)  # told to re-check (and poll) rather than sleep 20 s
    assert time.monotonic() - started < 2


async def test_waits_poll_while_the_listener_cannot_reconnect(
    pg_stores: StoreFactory, pg_url: str, pg_server: str
) -> None:
    a, b = await pg_stores(), await pg_stores(poll_interval=0.1)
    req, _ = await a.submit(new())
    [claim] = await a.claim("w1", 1, LEASE)
    database = pg_url.rsplit("/", 1)[1]
    admin_conn = await asyncpg.connect(pg_server)  # another database: ours refuses connections
    try:
        await admin_conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin_conn.execute("SELECT pg_terminate_backend($1)", b.listener.backend_pid)
        await eventually(lambda: b.listener.backend_pid is None)
        waiter = asyncio.create_task(b.wait_for_change(req.id, claim.request.seq, timeout=20))
        elapsed = await woken_within(
            waiter, a.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("ok"))
        )
        assert waiter.result() is True and elapsed < 1.0  # found by polling every 0.1 s
        started = time.monotonic()
        await b.wait_for_work(20)  # capped at poll_interval while no notification can come
        assert time.monotonic() - started < 1.0
    finally:
        await admin_conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin_conn.close()
    await eventually(lambda: b.listener.connects == 2 and b.listener.backend_pid is not None)
    await b.wait_for_work(0)
    elapsed = await woken_within(asyncio.create_task(b.wait_for_work(20)), a.submit(new()))
    assert elapsed < FAST


async def test_unreachable_server_is_store_unavailable(clock: ManualClock) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await PostgresStore.open("postgresql://postgres@127.0.0.1:1/errand", clock=clock)
    assert time.monotonic() - started < 10


async def test_a_malformed_url_is_a_config_error(clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match=r"storage\.url"):
        await PostgresStore.open("postgresql://127.0.0.1:notaport/errand", clock=clock)


async def test_calls_after_close_are_store_unavailable(pg_stores: StoreFactory) -> None:
    store = await pg_stores()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get("req_x")
    with pytest.raises(StoreUnavailable):
        await store.submit(new())
    await store.close()  # closing twice is harmless


# -- migrations ---------------------------------------------------------------------------------------
PACKAGED = [name for name, _ in sql.migrations()]
assert PACKAGED[0] == "0001_init"
"""Every packaged migration, in order (0001_init first): what a fresh database gets."""


async def test_fresh_database_is_not_current_until_migrated(pg_fresh_url: str, clock: ManualClock) -> None:
    store = await PostgresStore.open(pg_fresh_url, clock=clock, migrate=False)
    try:
        await store.ping()
        assert await store.schema_current() is False
        assert await store.migrate() == PACKAGED
        assert await store.schema_current() is True
    finally:
        await store.close()


async def test_concurrent_migrate_is_safe(pg_fresh_url: str, clock: ManualClock) -> None:
    stores = [await PostgresStore.open(pg_fresh_url, clock=clock, migrate=False) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        assert sorted(applied) == [[], [], [], PACKAGED]
        assert all([await s.schema_current() for s in stores])
        assert (await stores[0].submit(new()))[1] is True
    finally:
        for s in stores:
            await s.close()


# -- the seam -------------------------------------------------------------------------------------
async def test_open_store_picks_postgres_and_ignores_other_backends_options(
    pg_url: str, clock: ManualClock
) -> None:
    store = await open_store(pg_url, clock=clock, synchronous="normal", poll_interval=0.1, pool_size=2)
    try:
        assert isinstance(store, PostgresStore) and store.cross_process_wakeups is True
        assert await store.schema_current() is True
    finally:
        await store.close()


async def test_a_value_postgres_refuses_is_invalid_request(store: Store) -> None:
    with pytest.raises(InvalidRequest):
        await store.submit(NewRequest(id=new_request_id(), owner="o", user_id="u", message="nul \x00 byte"))


# -- worker liveness: a worker's database session ---------------------------------------------------
async def test_a_worker_whose_session_ends_is_taken_over_at_once(
    pg_stores: StoreFactory, pg_url: str
) -> None:
    """The owner's lock connection is killed (as when its process dies): another store takes
    its request over within moments, not a lease later; the owner claims nothing while its lock
    is down, registers again by itself, and its old attempt stays fenced."""
    a, b = await pair(pg_stores)
    await a.register_worker("wA")
    req, _ = await a.submit(new())
    [claim] = await a.claim("wA", 1, LEASE)
    assert len(await b.requeue_dead()) == 0
    lock_pid = a.worker_locks.backend_pid
    assert lock_pid is not None and a.worker_locks.connects == 1
    await terminate(pg_url, [lock_pid])
    started = time.monotonic()
    await eventually_async(lambda: count(b.requeue_dead), 1, timeout=5)
    assert time.monotonic() - started < 2.0
    requeued = await b.get(req.id)
    assert requeued.failures == 1 and requeued.error is not None and "died" in requeued.error.message
    with pytest.raises(LeaseLost):
        await a.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("stale"))
    await eventually(lambda: a.worker_locks.connects == 2)  # registered again, with a new lock
    assert a.worker_locks.backend_pid not in (None, lock_pid)
    [again] = await a.claim("wA", 1, LEASE)
    assert again.attempt == claim.attempt + 1
    assert len(await b.requeue_dead()) == 0


async def test_a_worker_without_its_lock_does_not_claim(
    pg_stores: StoreFactory, pg_url: str, pg_server: str
) -> None:
    """While its lock connection cannot come back, the worker's claims are refused (its leases
    may be taken over meanwhile); once it is back, it claims again."""
    a = await pg_stores()
    await a.register_worker("wA")
    await a.submit(new())
    name = pg_url.rsplit("/", 1)[1]
    lock_pid = a.worker_locks.backend_pid
    assert lock_pid is not None
    await admin(pg_server, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    try:
        await terminate(pg_server, [lock_pid])
        await eventually(lambda: a.worker_locks.backend_pid is None)
        with pytest.raises(StoreUnavailable, match="session lock"):
            await a.claim("wA", 1, LEASE)
        assert await a.claim("w-unregistered", 0, LEASE) == []  # other ids are not concerned
    finally:
        await admin(pg_server, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    await eventually(lambda: a.worker_locks.connects == 2)
    assert len(await a.claim("wA", 1, LEASE)) == 1


async def test_closing_a_store_frees_its_workers_for_takeover(pg_stores: StoreFactory) -> None:
    a, b = await pair(pg_stores)
    await a.register_worker("wA")
    await a.submit(new())
    await a.claim("wA", 1, LEASE)
    await a.close()
    await eventually_async(lambda: count(b.requeue_dead), 1, timeout=5)
    assert len(await b.requeue_dead()) == 0
