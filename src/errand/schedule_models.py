"""Schedule values: when and what a schedule fires, one firing, and what the store did with it.

A leaf beside models.py (whose requests a firing submits); it imports no errand module but
models. The rules over these values are in store/schedule_rules.py and schedules/spec.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from errand.models import NewRequest, Request


class Overlap(enum.StrEnum):
    """What a schedule does at a fire time while its previous firing has not ended."""

    SKIP = "skip"  # no firing this time
    ENQUEUE = "enqueue"  # fire anyway: the new one queues beside the old
    CANCEL_PREVIOUS = "cancel_previous"  # cancel the old one, then fire


class CatchUp(enum.StrEnum):
    """What a schedule does with fire times missed while no scheduler ran."""

    SKIP = "skip"  # fire only at the next future time
    ONE = "one"  # one catch-up firing now for all the missed ones, then the next future time


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored: when (cron in a timezone, or every N seconds), what (a trigger with
    data, or an agent with a message), and its state (next fire time, consecutive failures).

    `source` is "api" (made over HTTP) or "file" (a trigger's `schedule:` front matter)."""

    id: str
    name: str
    source: str
    cron: str | None
    every_seconds: float | None
    timezone: str
    trigger: str | None
    data: dict[str, Any]
    agent: str | None
    message: str | None
    user_id: str
    overlap: Overlap
    catch_up: CatchUp
    enabled: bool
    max_failures: int
    consecutive_failures: int = 0
    next_fire_at: float | None = None
    last_fired_at: float | None = None
    last_request_id: str | None = None
    counted_request_id: str | None = None  # the last firing whose outcome was counted
    created_at: float = 0.0
    updated_at: float = 0.0


SCHEDULE_OWNER = "errand-scheduler"
"""The `owner` of every schedule firing (no client key made it): admins see them all."""


def firing_id(schedule_id: str, fire_at: float, *, run_now: bool = False) -> str:
    """The request id of a schedule's firing at `fire_at`: unique per schedule and fire time (ms),
    so the requests primary key refuses a second firing of one time. "Run now" firings are
    marked apart, so one never takes a timetable time's id."""
    return f"sched:{schedule_id}:{'run:' if run_now else ''}{round(fire_at * 1000)}"


@dataclass(frozen=True, slots=True)
class Firing:
    """One fire time of a schedule, as the scheduler asks `Store.fire_schedule` for it.

    `due_at` is the next_fire_at the scheduler read (None: "run now", outside the timetable);
    the store fires only if the row still has it, so one fire time fires once. `request` is
    what to submit; None with `build_error` when it could not be built (a failed firing), None
    without when this time is passed over (missed while down, `catch_up: skip`)."""

    schedule_id: str
    due_at: float | None
    next_fire_at: float | None
    request: NewRequest | None
    build_error: str | None = None


@dataclass(frozen=True, slots=True)
class FireOutcome:
    """What `Store.fire_schedule` did: `fired` (request set), `skipped` (overlap: the previous
    firing is still running), `disabled` (max_failures reached), or `lost` (another scheduler
    fired this time, or the schedule changed or went away meanwhile)."""

    outcome: str
    schedule: Schedule | None
    request: Request | None = None
    cancelled: str | None = None  # the previous firing cancelled by `cancel_previous`
