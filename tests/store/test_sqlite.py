"""The SQLite backend: the shared Store contract, plus what only SQLite has (one file shared by
several processes, group commit, the synchronous setting, lock and file errors)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from errand.clock import ManualClock
from errand.errors import ConfigError, Conflict, StoreUnavailable
from errand.models import Result, Status
from errand.store import open_store
from errand.store.sqlite import SqliteStore, schema
from errand.store.sqlite.notify import MAX_DATAGRAM, decode, encode, notify_dir
from tests.store.contract import LEASE, RESULT_TTL, StoreContract, new
from tests.store.contract_attempts import AttemptLogContract
from tests.store.contract_console import ConsoleReadsContract, ConsoleSessionContract
from tests.store.contract_forget import ForgetContract
from tests.store.contract_inputs import InputContract
from tests.store.contract_schedules import ScheduleContract
from tests.store.contract_webhooks import WebhookContract

POLL = 2.0  # long, so the contract's wake-up tests cannot pass by polling


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=POLL, result_ttl=RESULT_TTL)
    yield opened
    await opened.close()


@pytest.fixture
async def reopen(sqlite_url: str, clock: ManualClock) -> AsyncIterator[Callable[[], Awaitable[SqliteStore]]]:
    opened: list[SqliteStore] = []

    async def again() -> SqliteStore:
        opened.append(
            await SqliteStore.open(sqlite_url, clock=clock, poll_interval=POLL, result_ttl=RESULT_TTL)
        )
        return opened[-1]

    yield again
    for each in opened:
        await each.close()


class TestSqliteSchedules(ScheduleContract):
    """The schedule contract, unchanged."""


class TestSqliteStore(
    StoreContract,
    AttemptLogContract,
    InputContract,
    ConsoleSessionContract,
    ConsoleReadsContract,
    WebhookContract,
    ForgetContract,
):
    """The contract suite on a SQLite file in tmp_path."""

    async def test_cross_process_wakeups_on_posix(self, store: SqliteStore) -> None:
        assert store.cross_process_wakeups is (os.name == "posix")


@pytest.fixture
async def pair(sqlite_url: str, clock: ManualClock) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two independent stores on one file, as two processes would have."""
    a = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=0.05)
    b = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=0.05)
    yield a, b
    await a.close()
    await b.close()


async def test_two_instances_claim_exclusively(pair: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = pair
    submitted = await asyncio.gather(
        *(a.submit(new()) for _ in range(150)), *(b.submit(new()) for _ in range(150))
    )
    expected = {req.id for req, _ in submitted}

    claimed: dict[str, list[str]] = {"a": [], "b": []}
    while True:  # rounds of 8 concurrent claims, 4 per instance: both always take part
        rounds = await asyncio.gather(*(s.claim(f"w{n}", 5, LEASE) for s in (a, b) for n in range(4)))
        if not any(rounds):
            break
        for n, batch in enumerate(rounds):
            claimed["a" if n < 4 else "b"] += [c.request.id for c in batch]
    every = claimed["a"] + claimed["b"]
    assert len(every) == len(set(every)) == 300
    assert set(every) == expected
    assert claimed["a"] and claimed["b"]


async def test_other_instance_writes_are_seen_by_polling(pair: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = pair
    req, _ = await a.submit(new())
    assert await b.get(req.id) == req
    watcher = asyncio.create_task(b.wait_for_change(req.id, req.seq, timeout=5))
    await b.wait_for_work(0)
    work = asyncio.create_task(b.wait_for_work(5))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    await a.request_cancel(req.id)
    assert await asyncio.wait_for(watcher, 2) is True
    await asyncio.wait_for(work, 2)  # notified, or at the latest by poll_interval
    assert time.monotonic() - started < 0.5
    assert (await b.get(req.id)).status is Status.CANCELLED


async def test_lease_taken_over_by_another_instance(
    pair: tuple[SqliteStore, SqliteStore], clock: ManualClock
) -> None:
    a, b = pair
    req, _ = await a.submit(new())
    [stale] = await a.claim("wa", 1, LEASE)
    clock.advance(LEASE + 1)
    assert len(await b.requeue_expired()) == 1
    [fresh] = await b.claim("wb", 1, LEASE)
    assert fresh.attempt == stale.attempt + 1
    assert await a.heartbeat("wa", {req.id: stale.attempt}, LEASE) == {req.id}
    done = await b.finish(req.id, fresh.attempt, Status.COMPLETED, result=Result("b"))
    assert await a.get(req.id) == done


async def test_concurrent_migrations_apply_once(sqlite_url: str, clock: ManualClock) -> None:
    a = await SqliteStore.open(sqlite_url, clock=clock, migrate=False)
    b = await SqliteStore.open(sqlite_url, clock=clock, migrate=False)
    try:
        assert await a.schema_current() is False
        applied = await asyncio.gather(a.migrate(), b.migrate())
        packaged = [name for _, name, _ in schema.migrations()]
        assert packaged[0] == "0001_init" and sorted(applied) == [[], packaged]
        assert await a.schema_current() and await b.schema_current()
    finally:
        await a.close()
        await b.close()


async def test_group_commit_batches_concurrent_writes(
    store: SqliteStore, reopen: Callable[[], Awaitable[SqliteStore]]
) -> None:
    before = store.commits
    created = await asyncio.gather(*(store.submit(new()) for _ in range(500)))
    assert store.commits - before < 250  # 500 writes shared far fewer transactions (fsyncs)
    await store.close()
    again = await reopen()
    page = await again.list(owner=None, user_id=None, limit=1000)
    assert {r.id for r in page.requests} == {req.id for req, _ in created}


async def test_a_failing_write_does_not_spoil_its_batch(store: SqliteStore) -> None:
    await store.submit(new("req_taken"))
    outcomes = await asyncio.gather(
        *(store.submit(new()) for _ in range(20)),
        store.submit(new("req_taken")),
        *(store.submit(new()) for _ in range(20)),
        return_exceptions=True,
    )
    assert [type(o) for o in outcomes].count(Conflict) == 1
    page = await store.list(owner=None, user_id=None, limit=100)
    assert len(page.requests) == 41


async def test_synchronous_normal(sqlite_url: str, clock: ManualClock) -> None:
    fast = await open_store(sqlite_url, clock=clock, synchronous="normal")
    assert isinstance(fast, SqliteStore) and fast.synchronous == "normal"
    req, _ = await fast.submit(new())
    await fast.close()
    again = await SqliteStore.open(sqlite_url, clock=clock)
    try:
        assert again.synchronous == "full"
        assert await again.get(req.id) == req
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [("sqlite://relative.db", {}), ("sqlite:///:memory:", {}), ("sqlite:///x.db", {"synchronous": "off"})],
)
async def test_bad_settings_are_config_errors(url: str, options: dict[str, Any], clock: ManualClock) -> None:
    with pytest.raises(ConfigError):
        await SqliteStore.open(url, clock=clock, **options)


async def test_relative_and_absolute_urls(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = await SqliteStore.open("sqlite:///data/rel.db", clock=clock)
    absolute = await SqliteStore.open(f"sqlite:///{tmp_path}/abs.db", clock=clock)
    await relative.close()
    await absolute.close()
    assert (tmp_path / "data" / "rel.db").is_file() and (tmp_path / "abs.db").is_file()
    assert absolute.path == f"{tmp_path}/abs.db"


async def test_unopenable_file_is_store_unavailable(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable):
        await SqliteStore.open(f"sqlite:///{tmp_path}/garbage.db", clock=clock)
    with pytest.raises(StoreUnavailable):
        await SqliteStore.open(f"sqlite:///{tmp_path}", clock=clock)  # a directory


async def test_locked_database_is_store_unavailable_then_recovers(
    sqlite_url: str, clock: ManualClock
) -> None:
    store = await SqliteStore.open(sqlite_url, clock=clock, busy_timeout=0.1)
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailable):
            await store.submit(new())
        await store.ping()  # reads still work beside the writer (WAL)
        other.execute("ROLLBACK")
        req, created = await store.submit(new())
        assert created and (await store.get(req.id)) == req
    finally:
        other.close()
        await store.close()


async def test_closed_store_is_unavailable(store: SqliteStore) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.submit(new())
    with pytest.raises(StoreUnavailable):
        await store.get("req_x")
    await store.close()  # closing twice is harmless


async def test_close_commits_queued_writes(
    store: SqliteStore, reopen: Callable[[], Awaitable[SqliteStore]]
) -> None:
    pending = [asyncio.ensure_future(store.submit(new())) for _ in range(50)]
    await asyncio.sleep(0)
    await store.close()
    created = [req.id for req, _ in await asyncio.gather(*pending)]
    again = await reopen()
    assert len({(await again.get(i)).id for i in created}) == 50


async def test_relaxed_batches_skip_the_fsync_and_durable_ones_restore_it(tmp_path: Path) -> None:
    """A batch of only relaxed writes (claims, heartbeats, progress) commits with
    synchronous=NORMAL; any durable write in a batch commits with FULL again."""
    from errand.store.sqlite.connections import Writer, connect
    from errand.store.sqlite.fileguard import FileGuard

    path = str(tmp_path / "w.db")
    writer = Writer(
        lambda: connect(path, synchronous="full", writer=True, busy_timeout=5),
        guard=FileGuard(path),
        busy_timeout=5,
        synchronous="full",
    )
    await writer.start()

    def level(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    try:
        assert await writer.submit(level, relaxed=True) == 1  # NORMAL
        assert await writer.submit(level) == 2  # FULL
        gate = threading.Event()
        blocker = writer.submit(lambda c: gate.wait(5), relaxed=True)  # holds the writer thread
        await asyncio.sleep(0.05)
        mixed = [writer.submit(level, relaxed=True), writer.submit(level)]  # queued together
        gate.set()
        await blocker
        assert await asyncio.gather(*mixed) == [2, 2]  # one durable write makes the batch FULL
    finally:
        await writer.stop()


async def test_relaxed_writes_stay_normal_when_configured_normal(tmp_path: Path) -> None:
    from errand.store.sqlite.connections import Writer, connect
    from errand.store.sqlite.fileguard import FileGuard

    path = str(tmp_path / "n.db")
    writer = Writer(
        lambda: connect(path, synchronous="normal", writer=True, busy_timeout=5),
        guard=FileGuard(path),
        busy_timeout=5,
        synchronous="normal",
    )
    await writer.start()
    try:
        got = await writer.submit(lambda c: int(c.execute("PRAGMA synchronous").fetchone()[0]))
        assert got == 1
    finally:
        await writer.stop()


# -- cross-process wake-ups (Unix datagram sockets beside the file) -----------------------------
posix_only = pytest.mark.skipif(os.name != "posix", reason="Unix datagram sockets")
SLOW_POLL = 30.0  # only the notifier can wake these waits in time
FAST = 0.2


@pytest.fixture
async def far(sqlite_url: str, clock: ManualClock) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two stores on one file that would only notice each other by polling every 30 s."""
    a = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=SLOW_POLL)
    b = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=SLOW_POLL)
    assert a.cross_process_wakeups and b.cross_process_wakeups
    yield a, b
    await a.close()
    await b.close()


def sockets(sqlite_url: str) -> list[str]:
    return sorted(os.listdir(notify_dir(sqlite_url.removeprefix("sqlite:///"))))


@posix_only
async def test_submit_elsewhere_wakes_wait_for_work(far: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = far
    await b.wait_for_work(0)
    work = asyncio.create_task(b.wait_for_work(SLOW_POLL))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    await a.submit(new())
    await asyncio.wait_for(work, FAST)
    assert time.monotonic() - started < FAST


@posix_only
async def test_finish_elsewhere_wakes_wait_for_change_and_outbox(
    far: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = far
    req, _ = await a.submit(new(webhook_url="https://example.com/hook"))
    [claim] = await a.claim("wa", 1, LEASE)
    await b.wait_for_outbox(0)
    seq = (await b.get(req.id)).seq
    watcher = asyncio.create_task(b.wait_for_change(req.id, seq, timeout=SLOW_POLL))
    outbox = asyncio.create_task(b.wait_for_outbox(SLOW_POLL))
    await asyncio.sleep(0.02)
    done = await a.finish(req.id, claim.attempt, Status.COMPLETED, result=Result("ok"))
    assert await asyncio.wait_for(watcher, FAST) is True
    await asyncio.wait_for(outbox, FAST)
    assert await b.get(req.id) == done


@posix_only
async def test_cancel_elsewhere_wakes_wait_for_cancellation(far: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = far
    req, _ = await a.submit(new())
    await a.claim("wa", 1, LEASE)
    await b.wait_for_cancellation(0)
    cancelled = asyncio.create_task(b.wait_for_cancellation(SLOW_POLL))
    await asyncio.sleep(0.02)
    await a.request_cancel(req.id)
    await asyncio.wait_for(cancelled, FAST)
    assert await b.cancelled_among([req.id]) == {req.id}


@posix_only
async def test_stale_socket_of_a_dead_process_is_removed(sqlite_url: str, clock: ManualClock) -> None:
    a = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=SLOW_POLL)
    folder = notify_dir(sqlite_url.removeprefix("sqlite:///"))
    stale = os.path.join(folder, "999999-dead.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(stale)  # closed without unlinking: what a SIGKILLed process leaves behind
    (Path(folder) / "not-a-socket.sock").write_text("")
    b = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=SLOW_POLL)
    try:
        await b.wait_for_work(0)
        work = asyncio.create_task(b.wait_for_work(SLOW_POLL))
        await asyncio.sleep(0.02)
        await a.submit(new())
        await asyncio.wait_for(work, FAST)
        assert "999999-dead.sock" not in sockets(sqlite_url)
    finally:
        await a.close()
        await b.close()


@posix_only
async def test_close_removes_the_socket(sqlite_url: str, clock: ManualClock) -> None:
    a = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=SLOW_POLL)
    b = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=SLOW_POLL)
    assert len(sockets(sqlite_url)) == 2
    await a.close()
    assert len(sockets(sqlite_url)) == 1
    await b.close()
    assert sockets(sqlite_url) == []


@posix_only
async def test_long_paths_use_a_short_folder_in_tmp(tmp_path: Path, clock: ManualClock) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    url = f"sqlite:///{deep / 'errand.db'}"
    a = await SqliteStore.open(url, clock=clock, poll_interval=SLOW_POLL)
    b = await SqliteStore.open(url, clock=clock, poll_interval=SLOW_POLL)
    try:
        assert a.cross_process_wakeups and notify_dir(str(deep / "errand.db")).startswith(
            tempfile.gettempdir()
        )
        await b.wait_for_work(0)
        work = asyncio.create_task(b.wait_for_work(SLOW_POLL))
        await asyncio.sleep(0.02)
        await a.submit(new())
        await asyncio.wait_for(work, FAST)
    finally:
        await a.close()
        await b.close()
        os.rmdir(notify_dir(str(deep / "errand.db")))


@posix_only
async def test_unwritable_folder_falls_back_to_polling(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'errand.db'}"
    os.close(
        os.open(notify_dir(str(tmp_path / "errand.db")), os.O_CREAT | os.O_WRONLY)
    )  # a file, not a folder
    store = await SqliteStore.open(url, clock=clock, poll_interval=0.05)
    try:
        assert store.cross_process_wakeups is False
        assert "cross-process wake-ups off" in caplog.text
        req, _ = await store.submit(new())
        assert (await store.get(req.id)).id == req.id
    finally:
        await store.close()


def test_long_id_lists_are_split_or_collapsed() -> None:
    ids = [f"req_{n:026d}" for n in range(300)]
    messages = encode("wo", ids)
    assert len(messages) > 1 and all(len(m) <= MAX_DATAGRAM for m in messages)
    assert decode(messages[0])[0] == "wo"
    assert [i for m in messages for i in decode(m)[1]] == ids
    assert encode("w", [f"req_{n:026d}" for n in range(5000)]) == [b"a"]
