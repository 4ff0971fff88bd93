"""schedules.firing: the request a firing submits is an ordinary async request that says it is a
schedule's (kind, owner, id per fire time, metadata), runs at schedule priority, and takes the
agent's own retry policy and the trigger's webhook, as a trigger call would."""

from __future__ import annotations

from pathlib import Path

import pytest

from errand.config import Config, build_config
from errand.errors import InvalidRequest, ResourceNotFound
from errand.models import PRIORITY_SCHEDULE, Kind, Mode
from errand.schedule_models import SCHEDULE_OWNER, Schedule, firing_id
from errand.schedules import spec
from errand.schedules.firing import build_request
from errand.triggers import find_trigger, parse_trigger

HOOK = "https://hooks.example.com/digest"


def config(tmp_path: Path) -> Config:
    return build_config(
        {
            "keys": {"admin": ["admin-key-cccccccc"]},
            "agents": [
                {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
                {"id": "slow", "handler": "tests.support.agents:echo", "retry": {"max_attempts": 7}},
            ],
            "limits": {"priority_aging_seconds": 90},
        },
        env={},
        base_dir=str(tmp_path),
    )


def made(**fields: object) -> Schedule:
    written = spec.ScheduleSpec.model_validate({"name": "nightly", "every": "1h", **fields})
    return spec.build(written, schedule_id="sch_n", source="api", now=0.0, default_max_failures=5)


TRIGGERS = {
    "digest": parse_trigger(
        "digest", f"---\nagent: slow\nwebhook_url: {HOOK}\n---\nDigest of ${{{{ data.topic }}}}\n"
    )
}


def agent_ids(agent: str | None) -> str:
    if agent not in (None, "echo", "slow"):
        raise ResourceNotFound(f"agent {agent!r} not found")
    return agent or "echo"


def test_an_agent_firing_is_a_schedule_request_at_schedule_priority(tmp_path: Path) -> None:
    new = build_request(
        made(message="status?"), 3600.0, config=config(tmp_path), triggers={}, agent_id=agent_ids
    )
    assert new.id == firing_id("sch_n", 3600.0) == "sched:sch_n:3600000"
    assert (new.kind, new.owner, new.user_id) == (Kind.SCHEDULE.value, SCHEDULE_OWNER, "scheduler")
    assert new.metadata == {"schedule_id": "sch_n", "schedule": "nightly", "fire_at": 3600.0}
    assert (new.agent, new.message, new.mode) == ("echo", "status?", Mode.ASYNC)
    assert (new.priority, new.aging_seconds, new.max_attempts) == (PRIORITY_SCHEDULE, 90.0, 3)


def test_a_trigger_firing_renders_its_data_and_takes_the_triggers_agent_and_webhook(tmp_path: Path) -> None:
    schedule = made(trigger="digest", data={"topic": "news"})
    new = build_request(schedule, 7200.0, config=config(tmp_path), triggers=TRIGGERS, agent_id=agent_ids)
    assert (new.message, new.agent, new.trigger) == ("Digest of news", "slow", "digest")
    assert new.webhook_url == find_trigger(TRIGGERS, "digest").webhook_url == HOOK
    assert new.max_attempts == 7  # the agent's own retry policy


def test_run_now_never_takes_a_timetable_times_id(tmp_path: Path) -> None:
    new = build_request(
        made(message="m"), 3600.0, config=config(tmp_path), triggers={}, agent_id=agent_ids, run_now=True
    )
    assert new.id == "sched:sch_n:run:3600000" != firing_id("sch_n", 3600.0)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"trigger": "gone"}, ResourceNotFound),
        ({"trigger": "digest", "data": {}}, InvalidRequest),  # a template field missing
        ({"message": "m", "agent": "nobody"}, ResourceNotFound),
    ],
)
def test_a_firing_that_cannot_be_built_says_why(
    tmp_path: Path, fields: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        build_request(made(**fields), 0.0, config=config(tmp_path), triggers=TRIGGERS, agent_id=agent_ids)
