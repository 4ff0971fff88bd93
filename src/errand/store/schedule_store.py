"""The schedules part of the one Store protocol (`store.base.Store` inherits it).

Kept in its own module only so base.py stays small; the guarantees are the Store's own, held by
the same contract suite on every backend.
"""

from __future__ import annotations

import builtins
from typing import Protocol

from errand.schedule_models import FireOutcome, Firing, Schedule


class ScheduleStore(Protocol):
    """Schedules: stored definitions, the due ones, and firing one exactly once."""

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        """Store a new schedule as given. Conflict if its name (or id) is taken."""
        ...

    async def update_schedule(self, schedule: Schedule) -> Schedule:
        """Rewrite the schedule's definition, `enabled`, `consecutive_failures` and
        `next_fire_at` (never its firing history: last_fired_at, last_request_id). Returns the
        row as stored. NotFound if no schedule has this id; Conflict if the new name is taken."""
        ...

    async def get_schedule(self, key: str) -> Schedule:
        """The schedule with this id, else with this name. NotFound."""
        ...

    async def list_schedules(self) -> builtins.list[Schedule]:
        """Every schedule, by name."""
        ...

    async def delete_schedule(self, schedule_id: str) -> None:
        """Remove the schedule (its firings stay, as ordinary requests). NotFound."""
        ...

    async def due_schedules(self, limit: int) -> builtins.list[Schedule]:
        """Enabled schedules whose next_fire_at is <= now, soonest first."""
        ...

    async def fire_schedule(self, firing: Firing) -> FireOutcome:
        """One firing, in one transaction: unless the row still waits for `firing.due_at`
        (enabled, same next_fire_at; any row for "run now", due_at None) -> "lost", nothing
        written. Else `schedule_rules.decide()` from the previous firing's status: count its
        outcome, auto-disable at max_failures, apply the overlap policy (cancel the previous
        firing for cancel_previous) and submit `firing.request` (id unique per schedule and
        fire time: a second insert of it is refused); then next_fire_at = firing.next_fire_at
        (unchanged for run now), last_fired_at, last_request_id. However many stores, in however
        many processes, fire the same due_at at once, exactly one fires it. Wakes workers."""
        ...
