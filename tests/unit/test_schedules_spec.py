"""schedules.spec: the timetable (cron in a timezone, every N aligned to the epoch), the plan of
a due firing (on time, missed with catch_up skip or one), and the checks of a written schedule."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from errand.errors import ConfigError
from errand.schedule_models import CatchUp
from errand.schedules import spec

RIGA = ZoneInfo("Europe/Riga")


def made(**fields: object) -> spec.Schedule:
    written = spec.ScheduleSpec.model_validate({"name": "s", "message": "m", **fields})
    return spec.build(written, schedule_id="sch_1", source="api", now=0.0, default_max_failures=5)


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=RIGA).timestamp()


def test_cron_counts_in_its_timezone_across_a_daylight_saving_change() -> None:
    daily = made(cron="0 9 * * *", timezone="Europe/Riga")
    assert spec.next_after(daily, at(2024, 3, 30, 9, 0)) == at(2024, 3, 31, 9, 0)  # the night clocks move
    assert spec.next_after(daily, at(2024, 3, 31, 9, 0)) - at(2024, 3, 31, 9, 0) == 86400
    assert spec.latest_at_or_before(daily, at(2024, 3, 31, 9, 0)) == at(2024, 3, 31, 9, 0)
    assert spec.latest_at_or_before(daily, at(2024, 3, 31, 8, 59)) == at(2024, 3, 30, 9, 0)


def test_every_is_aligned_to_the_epoch() -> None:
    s = made(every="15m")
    assert (spec.next_after(s, 900.0), spec.next_after(s, 901.0)) == (1800.0, 1800.0)
    assert spec.latest_at_or_before(s, 1799.9) == 900.0
    assert made(every=30).every_seconds == 30.0


@pytest.mark.parametrize(
    ("catch_up", "now", "fires"),
    [
        (CatchUp.SKIP, 963.0, 960.0),  # on time (within the grace): fires
        (CatchUp.SKIP, 1000.0 + 600, None),  # ten times missed: passed over
        (CatchUp.ONE, 1000.0 + 600, 1560.0),  # one catch-up firing, at the latest missed time
    ],
)
def test_plan(catch_up: CatchUp, now: float, fires: float | None) -> None:
    s = made(every="1m", catch_up=catch_up.value)
    due = spec.dataclasses.replace(s, next_fire_at=960.0)
    fire_at, next_fire = spec.plan(due, now, misfire_grace=5)
    assert fire_at == fires
    assert next_fire > now and next_fire % 60 == 0


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no timetable
        {"cron": "* * * * *", "every": "1m"},
        {"cron": "bad"},
        {"every": "0.1s"},
        {"every": "1m", "timezone": "Nowhere/Land"},
        {"every": "1m", "trigger": "t"},  # a message too: two targets
        {"every": "1m", "max_failures": -1},
    ],
)
def test_bad_specs_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        spec.ScheduleSpec.model_validate({"name": "s", "message": "m", **fields})


def test_front_matter_names_the_file_and_field() -> None:
    assert spec.from_front_matter("t", {"every": "5s"}).trigger == "t"
    with pytest.raises(ConfigError, match=r"triggers/t.md: schedule.every"):
        spec.from_front_matter("t", {"every": "never"})
    with pytest.raises(ConfigError, match="the trigger is its target"):
        spec.from_front_matter("t", {"every": "5s", "message": "x"})
