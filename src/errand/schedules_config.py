"""The `schedules:` section of formation.yaml: the scheduler every worker process runs.

Its own module so config.py stays one screenful per concern; config.py composes it into Config
(and remains the only reader of os.environ).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from errand.durations import Duration


class SchedulesConfig(BaseModel):
    """The scheduler (`schedules/`), run beside the workers of every process (each time fires once
    in all): `tick` s between looks for due schedules; a schedule is disabled after `max_failures`
    consecutive failed firings (0: never; its own setting overrides); a fire time found later than
    `misfire_grace` is missed (`catch_up: skip` passes it over, `one` fires once for all missed)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = True
    """false: this formation's processes run no scheduler (schedules still fire in processes that do)."""
    tick: Duration = Field(default=1.0, gt=0)
    max_failures: int = Field(default=5, ge=0)
    misfire_grace: Duration = 60.0
