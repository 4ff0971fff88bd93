"""The schedule rules both backends share: row <-> model, and what one firing does. Pure.

`fire_schedule` runs in one transaction on each backend: lock the schedule row, check it still
waits for this fire time, read the previous firing's status, `decide()` here, then write what
the decision says (submit, cancel the previous firing, advance the row). The decision is one
function so that overlap, failure counting and auto-disable mean the same on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from errand.errors import Conflict, ResourceNotFound
from errand.models import Status
from errand.schedule_models import CatchUp, Firing, Overlap, Schedule
from errand.store.rules import Json, Values

SCHEDULE_COLUMNS = (
    "id, name, source, cron, every_seconds, timezone, trigger_name, data, agent, message, user_id, "
    "overlap, catch_up, enabled, max_failures, consecutive_failures, next_fire_at, last_fired_at, "
    "last_request_id, counted_request_id, created_at, updated_at"
)
DEFINITION_COLUMNS = (
    "name", "cron", "every_seconds", "timezone", "trigger_name", "data", "agent", "message", "user_id",
    "overlap", "catch_up", "enabled", "max_failures", "consecutive_failures", "next_fire_at", "updated_at",
)  # fmt: skip
"""What `update_schedule` writes: the definition and its timing, never the firing history."""


def to_schedule(row: Values, json: Json) -> Schedule:
    """A row selected with SCHEDULE_COLUMNS."""
    return Schedule(
        id=row[0],
        name=row[1],
        source=row[2],
        cron=row[3],
        every_seconds=row[4],
        timezone=row[5],
        trigger=row[6],
        data=json(row[7]) or {},
        agent=row[8],
        message=row[9],
        user_id=row[10],
        overlap=Overlap(row[11]),
        catch_up=CatchUp(row[12]),
        enabled=bool(row[13]),
        max_failures=row[14],
        consecutive_failures=row[15],
        next_fire_at=row[16],
        last_fired_at=row[17],
        last_request_id=row[18],
        counted_request_id=row[19],
        created_at=row[20],
        updated_at=row[21],
    )


def schedule_values(s: Schedule, data: Any) -> tuple[Any, ...]:
    """The values of SCHEDULE_COLUMNS, in order (`data` already encoded for the backend)."""
    return (
        s.id, s.name, s.source, s.cron, s.every_seconds, s.timezone, s.trigger, data, s.agent,
        s.message, s.user_id, s.overlap.value, s.catch_up.value, s.enabled, s.max_failures,
        s.consecutive_failures, s.next_fire_at, s.last_fired_at, s.last_request_id,
        s.counted_request_id, s.created_at, s.updated_at,
    )  # fmt: skip


def definition_values(s: Schedule, data: Any) -> tuple[Any, ...]:
    """The values of DEFINITION_COLUMNS, in order."""
    every = dict(zip(SCHEDULE_COLUMNS.replace(" ", "").split(","), schedule_values(s, data), strict=True))
    return tuple(every[column] for column in DEFINITION_COLUMNS)


def schedule_not_found(schedule_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"schedule {schedule_id!r} not found", details={"schedule_id": schedule_id})


def name_taken(name: str) -> Conflict:
    return Conflict(f"a schedule named {name!r} already exists", details={"name": name})


@dataclass(frozen=True, slots=True)
class Decision:
    """What one firing writes. `outcome`: fired | skipped | disabled (see models.FireOutcome)."""

    outcome: str
    failures: int
    counted: str | None
    enabled: bool
    cancel_previous: bool = False


def decide(schedule: Schedule, firing: Firing, previous: Status | None) -> Decision:
    """The one decision of a firing, from the schedule row and its previous firing's status
    (None: no previous firing, or it was purged).

    - A previous firing that ended and was not counted yet is counted now: failed adds one to
      consecutive_failures, completed resets it to 0 (a cancelled one counts as neither).
    - A firing whose request could not be built (`build_error`) is a failure itself; a time
      passed over (request None, no error) only advances.
    - At `max_failures` (> 0) consecutive failures the schedule is disabled and does not fire.
    - Overlap, for a timetable firing while the previous one has not ended: skip -> no firing
      this time; cancel_previous -> cancel it, then fire; enqueue -> fire.
    - "Run now" (`due_at` None) always fires (and never cancels)."""
    failures, counted = schedule.consecutive_failures, schedule.counted_request_id
    last = schedule.last_request_id
    ended = previous is not None and previous.is_terminal
    if last is not None and last != counted and ended:
        if previous is Status.FAILED:
            failures += 1
        elif previous is Status.COMPLETED:
            failures = 0
        counted = last
    if firing.build_error is not None:
        failures += 1
    if schedule.max_failures > 0 and failures >= schedule.max_failures and firing.due_at is not None:
        return Decision("disabled", failures, counted, enabled=False)
    if firing.request is None:
        return Decision("skipped", failures, counted, schedule.enabled)
    running = previous is not None and not previous.is_terminal
    if running and firing.due_at is not None:
        if schedule.overlap is Overlap.SKIP:
            return Decision("skipped", failures, counted, schedule.enabled)
        cancel = schedule.overlap is Overlap.CANCEL_PREVIOUS
        return Decision("fired", failures, counted, schedule.enabled, cancel)
    return Decision("fired", failures, counted, schedule.enabled)


def still_due(schedule: Schedule | None, firing: Firing) -> bool:
    """Does the row still wait for this firing? (Else another scheduler fired it, or it was
    paused, edited or deleted meanwhile: the firing is lost, and nothing is written.)"""
    if schedule is None:
        return False
    if firing.due_at is None:  # run now: any existing schedule, paused or not
        return True
    return schedule.enabled and schedule.next_fire_at == firing.due_at
