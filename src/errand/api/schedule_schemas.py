"""The response bodies of the schedule admin routes (api/schedules.py): what /openapi.json
documents for them. Beside api/schemas.py (which re-exports them), same rules: the answers are
plain dicts, these models their schema, `extra="forbid"`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleDocument(_Doc):
    """A schedule: its timetable (`cron` in `timezone`, or `every` s), its target (a trigger with
    `data`, or an agent with a `message`), its policies and its next fire time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "sch_01J9Z3",
                    "name": "nightly-report",
                    "cron": "0 2 * * *",
                    "every": None,
                    "timezone": "Europe/Riga",
                    "trigger": None,
                    "data": {},
                    "agent": "researcher",
                    "message": "Summarise yesterday's tickets",
                    "user_id": "scheduler",
                    "overlap": "skip",
                    "catch_up": "one",
                    "enabled": True,
                    "max_failures": 5,
                    "source": "api",
                    "consecutive_failures": 0,
                    "next_fire_at": 1785880800.0,
                    "next_fire_at_iso": "2026-08-04T23:00:00+00:00",
                    "last_fired_at": None,
                    "last_request_id": None,
                    "created_at": 1785843812.44,
                    "updated_at": 1785843812.44,
                }
            ]
        }
    )

    id: str
    name: str
    cron: str | None
    every: float | None = Field(description="Seconds between firings (aligned to the epoch).")
    timezone: str
    trigger: str | None
    data: dict[str, Any]
    agent: str | None
    message: str | None
    user_id: str
    overlap: Literal["skip", "enqueue", "cancel_previous"]
    catch_up: Literal["skip", "one"]
    enabled: bool
    max_failures: int = Field(description="Disabled after this many consecutive failed firings (0: never).")
    source: Literal["api", "file"] = Field(description="file: a trigger's `schedule:` front matter.")
    consecutive_failures: int
    next_fire_at: float | None = Field(description="Unix time, seconds; null while disabled.")
    next_fire_at_iso: str | None
    last_fired_at: float | None
    last_request_id: str | None = Field(description="The request of the last firing (kind `schedule`).")
    created_at: float
    updated_at: float


class ScheduleList(_Doc):
    schedules: list[ScheduleDocument]
    count: int


class ScheduleDeleted(_Doc):
    id: str
    name: str
    deleted: Literal[True]
