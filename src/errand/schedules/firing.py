"""The request one firing of a schedule submits: an ordinary async request of kind `schedule`.

Shared by the scheduler (timetable firings) and POST /v1/schedules/{id}/run (run now), so both
make the same request: a trigger target is rendered with the schedule's data exactly as
POST /v1/triggers/{name} renders it; an agent target sends the message. The request is owned
by `SCHEDULE_OWNER` for the schedule's `user_id`, carries the schedule in its metadata, and
gets webhooks from the trigger's front matter or `async.webhook_url`, as a trigger call would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from errand.config import Config
from errand.errors import InvalidRequest
from errand.metrics import REQUESTS, SCHEDULE_FIRINGS, agent_label
from errand.models import PRIORITY_SCHEDULE, Kind, Mode, NewRequest
from errand.schedule_models import SCHEDULE_OWNER, FireOutcome, Schedule, firing_id
from errand.triggers import Trigger, find_trigger

AgentIds = Callable[[str | None], str]
"""agent id or None (the default agent) -> the id of the agent that runs it; ResourceNotFound."""


def build_request(
    schedule: Schedule,
    fire_at: float,
    *,
    config: Config,
    triggers: Mapping[str, Trigger],
    agent_id: AgentIds,
    run_now: bool = False,
) -> NewRequest:
    """The firing's request. ResourceNotFound (an unknown trigger or agent) or InvalidRequest (a
    template field missing from the data) when it cannot be built."""
    webhook = config.async_.webhook_url
    if schedule.trigger is not None:
        trigger = find_trigger(triggers, schedule.trigger)
        message = trigger.render(schedule.data)
        agent = agent_id(trigger.agent)
        webhook = trigger.webhook_url or webhook
    else:
        message = schedule.message or ""
        agent = agent_id(schedule.agent)
    if not message:
        raise InvalidRequest(f"schedule {schedule.name!r} made an empty message")
    return NewRequest(
        id=firing_id(schedule.id, fire_at, run_now=run_now),
        owner=SCHEDULE_OWNER,
        user_id=schedule.user_id,
        message=message,
        kind=Kind.SCHEDULE.value,
        agent=agent,
        metadata={"schedule_id": schedule.id, "schedule": schedule.name, "fire_at": fire_at},
        trigger=schedule.trigger,
        webhook_url=webhook,
        mode=Mode.ASYNC,
        max_attempts=config.retry_for(agent).max_attempts,
        priority=PRIORITY_SCHEDULE,
        aging_seconds=config.limits.priority_aging_seconds,
    )


def count_fired(outcome: FireOutcome) -> None:
    """A firing made a request: counted as a schedule firing and as an accepted request."""
    SCHEDULE_FIRINGS.labels("fired").inc()
    if outcome.request is not None:
        REQUESTS.labels(outcome.request.kind, agent_label(outcome.request.agent), "accepted").inc()
