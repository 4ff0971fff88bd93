"""The scheduler loop: every tick, fire the schedules that are due, each fire time once.

It runs beside the workers of every `errand serve` and `errand worker` process; nothing about
it is process-local. Each tick reads the due schedules, plans each one's firing
(`spec.plan`: the fire time, or none when it was missed under `catch_up: skip`, and the next
time), builds its request (`firing.build_request`) and asks `Store.fire_schedule`, which fires
only if the row still waits for that time: of several schedulers, one wins and the others get
"lost". At start it writes the schedules of the triggers' front matter (`sync_files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping

from errand.backoff import Backoff
from errand.clock import Clock, new_id
from errand.config import Config
from errand.errors import Conflict, ErrandError, NotFound
from errand.metrics import SCHEDULE_FIRINGS
from errand.schedule_models import FireOutcome, Firing, Schedule
from errand.schedules import spec
from errand.schedules.firing import AgentIds, build_request, count_fired
from errand.store.base import Store
from errand.triggers import Trigger

log = logging.getLogger("errand.schedules")
DUE_BATCH = 100
_ERRORS = Backoff(initial=0.5, maximum=30.0)


class Scheduler:
    """Fires due schedules of one store. The triggers' `schedule:` front matter is checked when
    it is made (ConfigError naming the file), so a bad one stops the process at startup."""

    def __init__(
        self,
        store: Store,
        config: Config,
        triggers: Mapping[str, Trigger],
        agent_id: AgentIds,
        clock: Clock,
    ) -> None:
        self._store, self._config, self._triggers = store, config, triggers
        self._agent_id, self._clock = agent_id, clock
        self._files = {
            name: spec.from_front_matter(name, t.schedule) for name, t in triggers.items() if t.schedule
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Sync the file schedules, then tick until `stop`; store errors are logged and retried."""
        failures = 0
        synced = False
        while not stop.is_set():
            try:
                if not synced:
                    await self.sync_files()
                    synced = True
                await self.tick()
                failures, wait = 0, self._config.schedules.tick
            except ErrandError as exc:
                failures += 1
                wait = _ERRORS.delay(failures)
                log.warning("scheduler: %s; retrying in %.1fs", exc, wait)
            except Exception:  # a bug must not stop the workers beside it: logged with its traceback
                failures += 1
                wait = _ERRORS.delay(failures)
                log.exception("scheduler: unexpected error; retrying in %.1fs", wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def tick(self) -> list[FireOutcome]:
        """Fire what is due now; the outcomes (for tests and logs)."""
        outcomes = []
        for schedule in await self._store.due_schedules(DUE_BATCH):
            outcomes.append(await self.fire_due(schedule))
        return outcomes

    async def fire_due(self, schedule: Schedule) -> FireOutcome:
        """One due schedule's firing (or passing over a missed time), logged."""
        now = self._clock.now()
        fire_at, next_fire = spec.plan(schedule, now, self._config.schedules.misfire_grace)
        request, error = None, None
        if fire_at is not None:
            try:
                request = build_request(
                    schedule, fire_at, config=self._config, triggers=self._triggers, agent_id=self._agent_id
                )
            except ErrandError as exc:
                error = exc.message
                log.error("schedule %s (%s): firing not built: %s", schedule.name, schedule.id, error)
        elif schedule.next_fire_at is not None:
            log.info("schedule %s: missed fire times passed over (catch_up: skip)", schedule.name)
        firing = Firing(schedule.id, schedule.next_fire_at, next_fire, request, error)
        outcome = await self._store.fire_schedule(firing)
        _report(schedule, outcome, fire_at, error)
        return outcome

    async def sync_files(self) -> None:
        """Write the triggers' schedules (source "file"): new ones created, changed ones
        rewritten (their `enabled` and failure count kept, the next fire time recounted only when
        the timetable changed), and file schedules whose front matter is gone deleted."""
        now = self._clock.now()
        stored = {s.name: s for s in await self._store.list_schedules()}
        for name, written in self._files.items():
            fresh = spec.build(
                written,
                schedule_id=new_id("sch"),
                source="file",
                now=now,
                default_max_failures=self._config.schedules.max_failures,
            )
            await self._sync_one(stored.get(name), fresh)
        for name, old in stored.items():
            if old.source == "file" and name not in self._files:
                with contextlib.suppress(NotFound):
                    await self._store.delete_schedule(old.id)
                log.info("schedule %s removed: its trigger has no schedule now", name)

    async def _sync_one(self, old: Schedule | None, fresh: Schedule) -> None:
        if old is None:
            with contextlib.suppress(Conflict):  # another process created it first
                await self._store.create_schedule(fresh)
            return
        if old.source != "file":
            log.warning("trigger %s has a schedule, but one made over the API has its name: kept", old.name)
            return
        same_times = (old.cron, old.every_seconds, old.timezone) == (
            fresh.cron,
            fresh.every_seconds,
            fresh.timezone,
        )
        merged = dataclasses.replace(
            fresh,
            id=old.id,
            enabled=old.enabled,
            consecutive_failures=old.consecutive_failures,
            next_fire_at=old.next_fire_at if same_times else fresh.next_fire_at,
            created_at=old.created_at,
        )
        if merged != dataclasses.replace(old, updated_at=merged.updated_at):
            await self._store.update_schedule(merged)


def _report(schedule: Schedule, outcome: FireOutcome, fire_at: float | None, error: str | None) -> None:
    """One log line (naming the request) and one count per handled fire time."""
    rid = outcome.request.id if outcome.request is not None else schedule.last_request_id
    ids = {"request_id": rid, "schedule_id": schedule.id}
    kind = outcome.outcome
    if kind == "fired":
        count_fired(outcome)
        log.info("schedule %s fired request %s", schedule.name, rid, extra=ids)
        if outcome.cancelled:
            log.info(
                "schedule %s cancelled its previous firing %s", schedule.name, outcome.cancelled, extra=ids
            )
        return
    if kind == "disabled":
        failures = outcome.schedule.consecutive_failures if outcome.schedule else schedule.max_failures
        log.warning(
            "schedule %s (%s) disabled after %d consecutive failed firings (last request %s)",
            *(schedule.name, schedule.id, failures, rid),
            extra=ids,
        )
    elif kind == "skipped":
        kind = "failed" if error is not None else "passed_over" if fire_at is None else "skipped"
        if kind == "skipped":
            log.info("schedule %s skipped: its previous firing %s runs", schedule.name, rid, extra=ids)
    SCHEDULE_FIRINGS.labels(kind).inc()
