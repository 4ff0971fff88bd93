"""The console's store guarantees (sessions; the dashboard reads), part of the Store contract run
unchanged against every backend (the backends' test classes inherit these tests)."""

from __future__ import annotations

from errand.clock import ManualClock
from errand.console_models import ConsoleSession
from errand.store.base import Store
from tests.store.contract import Reopen


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
