"""`Store.forget`: a finished request tombstoned at once (DELETE /v1/responses/{id}); part of the
Store contract, run unchanged against every backend."""

from __future__ import annotations

import pytest

from errand.clock import ManualClock
from errand.errors import Conflict, LeaseLost, NotFound, RequestExpired
from errand.models import Progress, Result, Status
from errand.store.base import Store
from tests.store.contract import DAY, HOOK, new, running
from tests.store.contract_console import tally


class ForgetContract:
    """forget: content, events, deliveries and attempts gone in one write; only finished ones."""

    async def test_a_finished_request_is_forgotten_with_all_it_held(
        self, store: Store, clock: ManualClock
    ) -> None:
        req, attempt = await running(store, webhook_url=HOOK, message="a secret", metadata={"k": "v"})
        await store.append_event(req.id, attempt, "progress", {"percent": 50}, Progress(50.0))
        await store.finish(req.id, attempt, Status.COMPLETED, result=Result("the secret answer"))
        other, _ = await store.submit(new())
        assert await store.list_deliveries(req.id) and await store.list_attempts(req.id)
        before = tally(await store.console_counts())
        await store.forget(req.id)
        with pytest.raises(RequestExpired):
            await store.get(req.id)
        assert await store.events_since(req.id) == []
        assert await store.list_deliveries(req.id) == []
        assert await store.list_attempts(req.id) == []
        assert [r.id for r in (await store.list(owner=None, user_id=None)).requests] == [other.id]
        after = tally(await store.console_counts())
        assert after.get(("completed", None, None), 0) == before[("completed", None, None)] - 1
        with pytest.raises(RequestExpired):  # a second forget finds only the tombstone
            await store.forget(req.id)
        with pytest.raises(RequestExpired):
            await store.request_cancel(req.id)
        clock.advance(2 * DAY)
        assert await store.purge_expired(result_ttl=DAY, tombstone_ttl=DAY) == 1  # the tombstone dropped
        with pytest.raises(NotFound):
            await store.get(req.id)

    async def test_only_finished_requests_can_be_forgotten(self, store: Store) -> None:
        held, _ = await running(store)
        queued, _ = await store.submit(new())
        for unfinished in (queued, held):
            with pytest.raises(Conflict):
                await store.forget(unfinished.id)
            assert (await store.get(unfinished.id)).status is not Status.CANCELLED
        cancelled, _ = await store.request_cancel(queued.id)
        await store.forget(cancelled.id)
        with pytest.raises(RequestExpired):
            await store.get(cancelled.id)
        with pytest.raises(NotFound):
            await store.forget("req_unknown")

    async def test_a_stale_attempt_writes_nothing_back_into_a_forgotten_request(self, store: Store) -> None:
        req, attempt = await running(store)
        await store.request_cancel(req.id)  # cooperative: the worker has not stopped yet
        await store.forget(req.id)
        with pytest.raises((LeaseLost, RequestExpired)):  # fenced like any stale attempt
            await store.append_event(req.id, attempt, "content", {"text": "late"}, None)
        with pytest.raises((LeaseLost, RequestExpired)):
            await store.finish(req.id, attempt, Status.COMPLETED, result=Result("late"))
        assert await store.events_since(req.id) == []
