"""ScheduleContract: the schedule methods of the Store protocol, run unchanged on every backend.

Mixed into each backend's test module beside StoreContract, with the same `store`, `reopen`
and `clock` fixtures. Several store instances on one database stand in for several processes:
"exactly once" is asserted with all of them firing the same fire times at the same moment.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from errand.clock import ManualClock
from errand.errors import Conflict, NotFound
from errand.models import ErrorInfo, Kind, NewRequest, Result, Status
from errand.schedule_models import SCHEDULE_OWNER, CatchUp, Firing, Overlap, Schedule, firing_id
from errand.store.base import Store
from tests.store.contract import LEASE, Reopen

MINUTE = 60.0


def schedule(**fields: Any) -> Schedule:
    values: dict[str, Any] = {
        "id": "sch_1",
        "name": "nightly",
        "source": "api",
        "cron": None,
        "every_seconds": MINUTE,
        "timezone": "UTC",
        "trigger": None,
        "data": {"k": [1, "two"]},
        "agent": None,
        "message": "report",
        "user_id": "scheduler",
        "overlap": Overlap.ENQUEUE,
        "catch_up": "skip",
        "enabled": True,
        "max_failures": 3,
        "next_fire_at": 1000.0,
        "created_at": 1.0,
        "updated_at": 1.0,
    } | fields
    values["catch_up"] = CatchUp(values["catch_up"])
    return Schedule(**values)


def request_of(s: Schedule, at: float) -> NewRequest:
    return NewRequest(
        id=firing_id(s.id, at),
        owner=SCHEDULE_OWNER,
        user_id=s.user_id,
        message=s.message or "",
        kind=Kind.SCHEDULE.value,
        metadata={"schedule_id": s.id},
    )


def firing(s: Schedule, at: float, **fields: Any) -> Firing:
    values: dict[str, Any] = {"request": request_of(s, at)} | fields
    return Firing(s.id, at, at + MINUTE, **values)


async def firings(store: Store) -> list[str]:
    page = await store.list(owner=SCHEDULE_OWNER, user_id=None, limit=1000)
    return sorted(r.id for r in page.requests)


async def end_running(store: Store, status: Status) -> None:
    """Claim the one runnable firing and end it in `status`."""
    [claim] = await store.claim("w1", 1, LEASE)
    result = Result("ok") if status is Status.COMPLETED else None
    error = ErrorInfo("Boom", "failed") if status is Status.FAILED else None
    await store.finish(claim.request.id, claim.attempt, status, result=result, error=error)


class ScheduleContract:
    async def test_create_get_list_update_delete(self, store: Store) -> None:
        s = schedule()
        assert await store.create_schedule(s) == s
        assert await store.get_schedule("sch_1") == s
        assert await store.get_schedule("nightly") == s  # by name too
        assert await store.list_schedules() == [s]
        changed = dataclasses.replace(s, name="hourly", every_seconds=3600.0, data={"n": 2}, updated_at=5.0)
        stored = await store.update_schedule(dataclasses.replace(changed, last_fired_at=9.0))
        assert stored == changed  # the firing history is never written by an update
        await store.delete_schedule("sch_1")
        with pytest.raises(NotFound):
            await store.get_schedule("sch_1")
        with pytest.raises(NotFound):
            await store.delete_schedule("sch_1")
        with pytest.raises(NotFound):
            await store.update_schedule(s)

    async def test_a_taken_name_is_a_conflict(self, store: Store) -> None:
        await store.create_schedule(schedule())
        with pytest.raises(Conflict):
            await store.create_schedule(schedule(id="sch_2"))
        await store.create_schedule(schedule(id="sch_2", name="other"))
        with pytest.raises(Conflict):
            await store.update_schedule(schedule(id="sch_2", name="nightly"))

    async def test_due_schedules_are_the_enabled_ones_at_or_past_their_time(
        self, store: Store, clock: ManualClock
    ) -> None:
        now = clock.now()
        await store.create_schedule(schedule(id="a", name="a", next_fire_at=now))
        await store.create_schedule(schedule(id="b", name="b", next_fire_at=now - 1))
        await store.create_schedule(schedule(id="c", name="c", next_fire_at=now + 1))
        await store.create_schedule(schedule(id="d", name="d", next_fire_at=10.0, enabled=False))
        due = [s.id for s in await store.due_schedules(10)]
        assert due == ["b", "a"], due
        assert [s.id for s in await store.due_schedules(1)] == ["b"]

    async def test_each_fire_time_fires_once_however_many_stores_fire_it(
        self, store: Store, reopen: Reopen
    ) -> None:
        s = schedule()
        await store.create_schedule(s)
        others = [await reopen() for _ in range(3)]
        stores = [store, *others]
        times = [1000.0 + n * MINUTE for n in range(10)]
        for at in times:
            outcomes = await asyncio.gather(*(each.fire_schedule(firing(s, at)) for each in stores))
            assert sorted(o.outcome for o in outcomes) == ["fired", "lost", "lost", "lost"]
            # and a store that read the row before the winner's commit finds it fired
            assert (await others[0].fire_schedule(firing(s, at))).outcome == "lost"
        assert await firings(store) == sorted(firing_id(s.id, at) for at in times)
        after = await store.get_schedule(s.id)
        assert after.next_fire_at == times[-1] + MINUTE
        assert after.last_request_id == firing_id(s.id, times[-1])
        fired = await store.get(firing_id(s.id, times[0]))
        assert (fired.kind, fired.status, fired.owner) == ("schedule", Status.PENDING, SCHEDULE_OWNER)
        assert len(await store.claim("w1", 100, LEASE)) == len(times)  # ordinary, claimable requests

    async def test_overlap_skip_passes_a_time_while_the_previous_firing_runs(self, store: Store) -> None:
        s = schedule(overlap=Overlap.SKIP)
        await store.create_schedule(s)
        assert (await store.fire_schedule(firing(s, 1000.0))).outcome == "fired"
        skipped = await store.fire_schedule(firing(s, 1060.0))
        assert skipped.outcome == "skipped"
        assert skipped.schedule is not None and skipped.schedule.next_fire_at == 1120.0
        assert await firings(store) == [firing_id(s.id, 1000.0)]
        await end_running(store, Status.COMPLETED)
        assert (await store.fire_schedule(firing(s, 1120.0))).outcome == "fired"

    async def test_overlap_enqueue_fires_beside_the_running_one(self, store: Store) -> None:
        s = schedule(overlap=Overlap.ENQUEUE)
        await store.create_schedule(s)
        await store.fire_schedule(firing(s, 1000.0))
        assert (await store.fire_schedule(firing(s, 1060.0))).outcome == "fired"
        assert len(await firings(store)) == 2

    async def test_overlap_cancel_previous_cancels_then_fires(self, store: Store) -> None:
        s = schedule(overlap=Overlap.CANCEL_PREVIOUS)
        await store.create_schedule(s)
        await store.fire_schedule(firing(s, 1000.0))
        await store.claim("w1", 1, LEASE)  # the first firing is running
        outcome = await store.fire_schedule(firing(s, 1060.0))
        assert (outcome.outcome, outcome.cancelled) == ("fired", firing_id(s.id, 1000.0))
        assert (await store.get(firing_id(s.id, 1000.0))).status is Status.CANCELLED
        assert (await store.get(firing_id(s.id, 1060.0))).status is Status.PENDING

    async def test_consecutive_failures_disable_the_schedule(self, store: Store) -> None:
        s = schedule(max_failures=2)
        await store.create_schedule(s)
        await store.fire_schedule(firing(s, 1000.0))
        await end_running(store, Status.FAILED)
        first = await store.fire_schedule(firing(s, 1060.0))
        assert first.outcome == "fired" and first.schedule is not None
        assert first.schedule.consecutive_failures == 1
        await end_running(store, Status.FAILED)
        disabled = await store.fire_schedule(firing(s, 1120.0))
        assert disabled.outcome == "disabled" and disabled.schedule is not None
        assert (disabled.schedule.enabled, disabled.schedule.consecutive_failures) == (False, 2)
        assert len(await firings(store)) == 2  # no firing at the time it was disabled
        assert await store.due_schedules(10) == []
        assert (await store.fire_schedule(firing(s, 1120.0))).outcome == "lost"  # disabled: not due

    async def test_a_completed_firing_resets_the_failure_count_and_counts_once(self, store: Store) -> None:
        s = schedule(max_failures=5, overlap=Overlap.SKIP)
        await store.create_schedule(s)
        await store.fire_schedule(firing(s, 1000.0))
        await end_running(store, Status.FAILED)
        await store.fire_schedule(firing(s, 1060.0))  # counts the failure: 1
        await end_running(store, Status.COMPLETED)
        back = await store.fire_schedule(firing(s, 1120.0))  # counts the success: 0
        assert back.schedule is not None and back.schedule.consecutive_failures == 0
        await end_running(store, Status.FAILED)
        counted = await store.fire_schedule(firing(s, 1180.0))
        assert counted.schedule is not None and counted.schedule.consecutive_failures == 1
        again = await store.fire_schedule(firing(s, 1240.0))  # 1180 still pending: skipped, not recounted
        assert again.outcome == "skipped" and again.schedule is not None
        assert again.schedule.consecutive_failures == 1

    async def test_a_firing_that_could_not_be_built_is_a_failure(self, store: Store) -> None:
        s = schedule(max_failures=2)
        await store.create_schedule(s)
        broken = await store.fire_schedule(firing(s, 1000.0, request=None, build_error="no trigger"))
        assert broken.outcome == "skipped" and broken.schedule is not None
        assert (broken.schedule.consecutive_failures, broken.schedule.next_fire_at) == (1, 1060.0)
        again = await store.fire_schedule(firing(s, 1060.0, request=None, build_error="no trigger"))
        assert again.outcome == "disabled"

    async def test_a_passed_over_time_only_advances(self, store: Store) -> None:
        s = schedule()
        await store.create_schedule(s)
        out = await store.fire_schedule(firing(s, 1000.0, request=None))
        assert out.outcome == "skipped" and out.schedule is not None
        assert (out.schedule.next_fire_at, out.schedule.consecutive_failures) == (1060.0, 0)
        assert await firings(store) == []

    async def test_run_now_fires_a_paused_schedule_and_keeps_its_timetable(self, store: Store) -> None:
        s = schedule(enabled=False)
        await store.create_schedule(s)
        new = dataclasses.replace(request_of(s, 5.0), id=firing_id(s.id, 5.0, run_now=True))
        out = await store.fire_schedule(Firing(s.id, None, None, new))
        assert out.outcome == "fired" and out.request is not None and out.schedule is not None
        assert out.schedule.next_fire_at == s.next_fire_at and out.schedule.last_request_id == new.id
        missing = await store.fire_schedule(Firing("nope", None, None, new))
        assert missing.outcome == "lost"

    async def test_a_stale_fire_time_is_lost_and_writes_nothing(self, store: Store) -> None:
        s = schedule()
        await store.create_schedule(s)
        assert (await store.fire_schedule(firing(s, 999.0))).outcome == "lost"
        assert await firings(store) == []
        assert (await store.get_schedule(s.id)).next_fire_at == 1000.0
