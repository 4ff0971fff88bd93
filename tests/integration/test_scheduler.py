"""The scheduler on a real SQLite store driven by a manual clock: on-time firings, downtime
(catch_up skip and one), firings that cannot be built, and the triggers' file schedules."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from errand.clock import ManualClock
from errand.config import Config, build_config
from errand.schedule_models import SCHEDULE_OWNER, CatchUp, Schedule, firing_id
from errand.schedules import spec
from errand.schedules.scheduler import Scheduler
from errand.store.sqlite import SqliteStore
from errand.triggers import Trigger, parse_trigger

MINUTE = 60.0


@pytest.fixture
async def store(sqlite_url: str, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(sqlite_url, clock=clock, poll_interval=2.0)
    yield opened
    await opened.close()


def config(tmp_path: Path) -> Config:
    return build_config(
        {
            "keys": {"admin": ["admin-key-cccccccc"]},
            "agents": [{"id": "echo", "handler": "tests.support.agents:echo", "default": True}],
            "schedules": {"misfire_grace": 5},
        },
        env={},
        base_dir=str(tmp_path),
    )


def scheduler(store: SqliteStore, tmp_path: Path, clock: ManualClock, **triggers: Trigger) -> Scheduler:
    return Scheduler(store, config(tmp_path), triggers, lambda agent: agent or "echo", clock)


async def every_minute(store: SqliteStore, clock: ManualClock, **fields: object) -> Schedule:
    written = spec.ScheduleSpec.model_validate({"name": "report", "every": "1m", "message": "go", **fields})
    made = spec.build(written, schedule_id="sch_r", source="api", now=clock.now(), default_max_failures=3)
    return await store.create_schedule(made)


async def fired(store: SqliteStore) -> list[str]:
    page = await store.list(owner=SCHEDULE_OWNER, user_id=None)
    return sorted(r.id for r in page.requests)


async def test_a_due_time_fires_once_and_the_next_is_counted(
    store: SqliteStore, clock: ManualClock, tmp_path: Path
) -> None:
    made = await every_minute(store, clock)
    assert made.next_fire_at is not None and made.next_fire_at % MINUTE == 0  # aligned to the epoch
    run = scheduler(store, tmp_path, clock)
    assert await run.tick() == []  # not due yet
    clock.advance(made.next_fire_at - clock.now() + 0.3)
    [outcome] = await run.tick()
    assert outcome.outcome == "fired"
    assert await fired(store) == [firing_id("sch_r", made.next_fire_at)]
    assert await run.tick() == []  # the same time never again
    after = await store.get_schedule("sch_r")
    assert after.next_fire_at == made.next_fire_at + MINUTE
    request = await store.get(firing_id("sch_r", made.next_fire_at))
    assert (request.kind, request.agent, request.message) == ("schedule", "echo", "go")
    assert request.metadata["schedule"] == "report"


@pytest.mark.parametrize(("catch_up", "fires"), [(CatchUp.SKIP, 0), (CatchUp.ONE, 1)])
async def test_times_missed_while_down_are_passed_over_or_caught_up_once(
    store: SqliteStore, clock: ManualClock, tmp_path: Path, catch_up: CatchUp, fires: int
) -> None:
    made = await every_minute(store, clock, catch_up=catch_up.value)
    assert made.next_fire_at is not None
    clock.advance(made.next_fire_at - clock.now() + 10 * MINUTE + 30)  # down for ten fire times
    await scheduler(store, tmp_path, clock).tick()
    ids = await fired(store)
    assert len(ids) == fires
    if fires:  # the one catch-up firing is at the latest missed time
        latest = made.next_fire_at + 10 * MINUTE
        assert ids == [firing_id("sch_r", latest)]
    after = await store.get_schedule("sch_r")
    assert after.next_fire_at is not None and after.next_fire_at > clock.now()


async def test_a_firing_that_cannot_be_built_counts_as_failed_and_is_logged(
    store: SqliteStore, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    made = await every_minute(store, clock)
    await store.update_schedule(dataclasses.replace(made, message=None, trigger="gone"))
    clock.advance(made.next_fire_at - clock.now() + 0.1 if made.next_fire_at else 0)
    with caplog.at_level(logging.ERROR, "errand.schedules"):
        await scheduler(store, tmp_path, clock).tick()
    assert "report (sch_r): firing not built" in caplog.text and "gone" in caplog.text
    assert (await store.get_schedule("sch_r")).consecutive_failures == 1
    assert await fired(store) == []


TRIGGER = """---
schedule:
  every: 30s
  data: {what: backups}
  overlap: cancel_previous
---
Check ${{ data.what }}
"""


async def test_file_schedules_are_synced_from_the_triggers(
    store: SqliteStore, clock: ManualClock, tmp_path: Path
) -> None:
    trigger = parse_trigger("nightly", TRIGGER)
    await scheduler(store, tmp_path, clock, nightly=trigger).sync_files()
    [made] = await store.list_schedules()
    assert (made.name, made.source, made.trigger, made.every_seconds) == ("nightly", "file", "nightly", 30.0)
    assert made.data == {"what": "backups"} and made.overlap.value == "cancel_previous"
    await store.update_schedule(dataclasses.replace(made, enabled=False))  # paused by an operator
    changed = parse_trigger("nightly", TRIGGER.replace("backups", "disks"))
    await scheduler(store, tmp_path, clock, nightly=changed).sync_files()  # a restart with a new file
    [again] = await store.list_schedules()
    assert (again.id, again.data, again.enabled) == (made.id, {"what": "disks"}, False)
    assert again.next_fire_at == made.next_fire_at  # same timetable: same next time
    await scheduler(store, tmp_path, clock).sync_files()  # the front matter is gone
    assert await store.list_schedules() == []


def test_a_bad_schedule_in_front_matter_stops_startup(store: SqliteStore, tmp_path: Path) -> None:
    bad = parse_trigger("t", "---\nschedule: {cron: 'not cron'}\n---\nhi\n")
    with pytest.raises(Exception, match=r"triggers/t.md: schedule.cron"):
        Scheduler(store, config(tmp_path), {"t": bad}, lambda a: "echo", ManualClock())
