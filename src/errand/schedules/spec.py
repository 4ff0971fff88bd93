"""What a schedule says, checked, and its timetable: the next fire time, the latest one due. Pure.

A schedule fires on `cron` (five fields, or six with seconds, in `timezone`: cronsim, which
steps through daylight-saving changes as cron does) or `every` (a duration such as `30s`,
`15m`, aligned to the epoch so that every process computes the same times: `every: 1h` fires
on the hour UTC). Its target is a trigger with `data`, or an agent (default: the default agent)
with a `message`. The same shape comes from POST /v1/schedules and from a trigger's front
matter (`schedule:`, whose target is that trigger)::

    schedule:
      cron: "0 9 * * 1-5"
      timezone: Europe/Riga
      data: {report: daily}
      overlap: skip          # skip | enqueue | cancel_previous
      catch_up: one          # skip | one
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from errand.durations import parse_duration
from errand.errors import ConfigError
from errand.schedule_models import CatchUp, Overlap, Schedule

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
MIN_EVERY_S = 1.0
MAX_EVERY_S = 366 * 86400.0
_EVERY_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": MIN_EVERY_S, "maximum": MAX_EVERY_S},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
        {"type": "null"},
    ],
    "description": "Fire every this long, aligned to the epoch: seconds, or '30s', '15m', '1h', '1d'.",
}


class ScheduleSpec(BaseModel):
    """A schedule as a client writes it (the body of POST /v1/schedules; PATCH merges into it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    cron: str | None = Field(default=None, max_length=200)
    every: Annotated[float | None, WithJsonSchema(_EVERY_SCHEMA)] = None
    timezone: str = Field(default="UTC", max_length=100)
    trigger: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    agent: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, min_length=1, max_length=100_000)
    user_id: str = Field(default="scheduler", min_length=1, max_length=256)
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.SKIP
    enabled: bool = True
    max_failures: int | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                next(CronSim(value, datetime.now(UTC)))
            except (CronSimError, StopIteration) as exc:
                raise ValueError(f"not a cron expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> ScheduleSpec:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' and 'every'")
        if self.every is not None and not MIN_EVERY_S <= self.every <= MAX_EVERY_S:
            raise ValueError(f"'every' must be from {MIN_EVERY_S:g}s to 366d")
        if (self.trigger is None) == (self.message is None):
            raise ValueError("give exactly one target: 'trigger' (with 'data') or 'message' (with 'agent')")
        if self.trigger is not None and self.agent is not None:
            raise ValueError("a trigger names its own agent: give 'agent' only with 'message'")
        return self


def zone(name: str) -> ZoneInfo:
    """The IANA timezone; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (an IANA name such as 'Europe/Riga' or 'UTC')") from None


def next_after(schedule: Schedule, t: float) -> float:
    """The first fire time strictly after `t` (epoch seconds)."""
    if schedule.every_seconds is not None:
        period = schedule.every_seconds
        return (math.floor(t / period) + 1) * period
    assert schedule.cron is not None
    start = datetime.fromtimestamp(t, zone(schedule.timezone))
    return next(CronSim(schedule.cron, start)).timestamp()


def latest_at_or_before(schedule: Schedule, t: float) -> float:
    """The last fire time <= `t`."""
    if schedule.every_seconds is not None:
        period = schedule.every_seconds
        return math.floor(t / period) * period
    assert schedule.cron is not None
    start = datetime.fromtimestamp(t, zone(schedule.timezone)) + timedelta(microseconds=1)
    return next(CronSim(schedule.cron, start, reverse=True)).timestamp()


def plan(schedule: Schedule, now: float, misfire_grace: float) -> tuple[float | None, float]:
    """(the fire time to fire now, or None to pass over; the next fire time after now) for a
    schedule whose next_fire_at is due. The latest time due fires if it is within
    `misfire_grace` of now; a later one means the times between were missed while no scheduler
    ran: `catch_up: skip` passes them all over, `catch_up: one` fires once (at the latest)."""
    due = schedule.next_fire_at if schedule.next_fire_at is not None else now
    latest = max(due, latest_at_or_before(schedule, now))
    on_time = now - latest <= misfire_grace
    fire_at = latest if on_time or schedule.catch_up is CatchUp.ONE else None
    return fire_at, next_after(schedule, now)


def build(
    spec: ScheduleSpec, *, schedule_id: str, source: str, now: float, default_max_failures: int
) -> Schedule:
    """The stored schedule a spec makes, first fire time included."""
    schedule = Schedule(
        id=schedule_id,
        name=spec.name,
        source=source,
        cron=spec.cron,
        every_seconds=spec.every,
        timezone=spec.timezone,
        trigger=spec.trigger,
        data=dict(spec.data),
        agent=spec.agent,
        message=spec.message,
        user_id=spec.user_id,
        overlap=spec.overlap,
        catch_up=spec.catch_up,
        enabled=spec.enabled,
        max_failures=default_max_failures if spec.max_failures is None else spec.max_failures,
        created_at=now,
        updated_at=now,
    )
    return retimed(schedule, now)


def retimed(schedule: Schedule, now: float) -> Schedule:
    """The schedule with its next fire time counted from now (created, edited, resumed)."""
    return dataclasses.replace(schedule, next_fire_at=next_after(schedule, now))


def spec_of(schedule: Schedule) -> dict[str, Any]:
    """The spec fields of a stored schedule (what PATCH merges its changes into)."""
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "every": schedule.every_seconds,
        "timezone": schedule.timezone,
        "trigger": schedule.trigger,
        "data": schedule.data,
        "agent": schedule.agent,
        "message": schedule.message,
        "user_id": schedule.user_id,
        "overlap": schedule.overlap,
        "catch_up": schedule.catch_up,
        "enabled": schedule.enabled,
        "max_failures": schedule.max_failures,
    }


def from_front_matter(trigger: str, raw: Mapping[str, Any]) -> ScheduleSpec:
    """The spec of a trigger's `schedule:` (named and targeted by the trigger); ConfigError
    naming the file and the field."""
    if "name" in raw or "trigger" in raw or "message" in raw or "agent" in raw:
        raise ConfigError(f"triggers/{trigger}.md: schedule: the trigger is its target and name")
    try:
        return ScheduleSpec.model_validate({**raw, "name": trigger, "trigger": trigger})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "schedule"
        raise ConfigError(f"triggers/{trigger}.md: schedule.{where}: {first['msg']}") from None


def document(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API shows it (GET /v1/schedules/{id}), next fire time included."""
    return {
        "id": schedule.id,
        **spec_of(schedule),
        "every": schedule.every_seconds,
        "overlap": schedule.overlap.value,
        "catch_up": schedule.catch_up.value,
        "source": schedule.source,
        "consecutive_failures": schedule.consecutive_failures,
        "next_fire_at": schedule.next_fire_at if schedule.enabled else None,
        "next_fire_at_iso": _iso(schedule.next_fire_at) if schedule.enabled else None,
        "last_fired_at": schedule.last_fired_at,
        "last_request_id": schedule.last_request_id,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()
