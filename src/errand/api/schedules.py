"""/v1/schedules (admin only): create, list, show, change, delete and run schedules.

POST /v1/schedules takes a `schedules.spec.ScheduleSpec` (201 with the schedule, its next fire
time included); GET lists or shows (by id or name); PATCH merges the fields given into the
schedule (setting `cron` drops `every` and the other way round; `trigger` drops `message` and
`agent`; resuming or a new timetable recounts the next fire time; resuming also clears the
failure count); DELETE removes it (its firings stay, as requests); POST .../run fires it now
(202 as a submit answers: its firings are ordinary requests, of kind `schedule`).

A schedule from a trigger's front matter (`source: file`) is the file's: only `enabled` can be
changed here (pause, resume), and DELETE is refused (409): edit the file instead. A target is
checked when it is written: an unknown trigger or agent, or data missing a template field, is a
422, not a failure at every firing. Everything answers 401 without the admin key.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, require_admin, with_body_user
from errand.api.body import invalid_from, parse_object, read_body
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.api.submit import accepted
from errand.clock import new_id
from errand.errors import Conflict, InvalidRequest, ResourceNotFound
from errand.models import NewRequest
from errand.schedule_models import Firing, Schedule
from errand.schedules import spec
from errand.schedules.firing import build_request, count_fired

log = logging.getLogger("errand.schedules")
SCHEDULES_PATH = "/v1/schedules"
_FIELDS = list(spec.ScheduleSpec.model_fields)
_EXCLUSIVE = {
    "cron": ("every",),
    "every": ("cron",),
    "trigger": ("message", "agent"),
    "message": ("trigger",),
}
"""A PATCH that sets the key drops these from the schedule it merges into."""


def _optional(field: FieldInfo) -> tuple[Any, FieldInfo]:
    annotation: Any = field.annotation
    return annotation | None, FieldInfo.merge_field_infos(field, default=None, default_factory=None)


_PATCH_FIELDS: dict[str, Any] = {name: _optional(f) for name, f in spec.ScheduleSpec.model_fields.items()}
SchedulePatch: type[BaseModel] = create_model(
    "SchedulePatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="PATCH /v1/schedules/{id}: any fields of a schedule; those given replace its own.",
    **_PATCH_FIELDS,
)
"""The PATCH body as documented: ScheduleSpec with every field optional (the merged schedule
is what gets validated, as a whole, by ScheduleSpec)."""


async def create_schedule(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    require_admin(owner)
    body = await _body(request, ctx)
    written = _spec(body)
    now = ctx.clock.now()
    schedule = spec.build(
        written,
        schedule_id=new_id("sch"),
        source="api",
        now=now,
        default_max_failures=ctx.config.schedules.max_failures,
    )
    _check_target(schedule, ctx, owner)
    stored = await ctx.store.create_schedule(schedule)
    url = f"{SCHEDULES_PATH}/{stored.id}"
    return json_response(spec.document(stored), 201, {"Location": url})


async def list_schedules(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    require_admin(owner)
    found = [spec.document(s) for s in await ctx.store.list_schedules()]
    return json_response({"schedules": found, "count": len(found)})


async def get_schedule(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    require_admin(owner)
    return json_response(spec.document(await ctx.store.get_schedule(request.path_params["schedule_id"])))


async def update_schedule(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    require_admin(owner)
    old = await ctx.store.get_schedule(request.path_params["schedule_id"])
    changes = await _body(request, ctx)
    if old.source == "file" and set(changes) - {"enabled"}:
        raise Conflict(
            f"schedule {old.name!r} is defined in triggers/{old.name}.md: edit the file "
            "(only 'enabled' can be changed here)",
            details={"schedule_id": old.id, "source": "file"},
        )
    base = spec.spec_of(old)
    for key in changes:
        for dropped in _EXCLUSIVE.get(key, ()):
            base.pop(dropped, None)
    merged = spec.build(
        _spec({**base, **changes}),
        schedule_id=old.id,
        source=old.source,
        now=ctx.clock.now(),
        default_max_failures=ctx.config.schedules.max_failures,
    )
    _check_target(merged, ctx, owner)
    resumed = merged.enabled and not old.enabled
    retime = resumed or (merged.cron, merged.every_seconds, merged.timezone) != (
        old.cron,
        old.every_seconds,
        old.timezone,
    )
    merged = dataclasses.replace(
        merged,
        created_at=old.created_at,
        consecutive_failures=0 if resumed else old.consecutive_failures,
        next_fire_at=merged.next_fire_at if retime else old.next_fire_at,
    )
    return json_response(spec.document(await ctx.store.update_schedule(merged)))


async def delete_schedule(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    require_admin(owner)
    old = await ctx.store.get_schedule(request.path_params["schedule_id"])
    if old.source == "file":
        raise Conflict(
            f"schedule {old.name!r} is defined in triggers/{old.name}.md: remove its 'schedule:' there",
            details={"schedule_id": old.id, "source": "file"},
        )
    await ctx.store.delete_schedule(old.id)
    return json_response({"id": old.id, "name": old.name, "deleted": True})


async def run_schedule(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/schedules/{id}/run: one firing now, outside the timetable (paused or not; the
    overlap policy is not applied: the operator asked for this one)."""
    require_admin(owner)
    schedule = await ctx.store.get_schedule(request.path_params["schedule_id"])
    new = _request_of(schedule, ctx, ctx.clock.now())
    outcome = await ctx.store.fire_schedule(Firing(schedule.id, None, None, new))
    if outcome.request is None:
        raise Conflict(f"schedule {schedule.name!r} did not fire ({outcome.outcome})")
    count_fired(outcome)
    log.info(
        "schedule %s run now: request %s",
        schedule.name,
        outcome.request.id,
        extra={"request_id": outcome.request.id},
    )
    return accepted(request, outcome.request)


async def _body(request: Request, ctx: ApiContext) -> dict[str, Any]:
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    return parse_object(raw, ctx.config.server.max_json_depth)


def _spec(body: dict[str, Any]) -> spec.ScheduleSpec:
    try:
        return spec.ScheduleSpec.model_validate(body)
    except ValidationError as exc:
        raise invalid_from(exc, _FIELDS) from None


def _check_target(schedule: Schedule, ctx: ApiContext, owner: Owner) -> None:
    """422 unless a firing of it can be built now (trigger, agent, template fields, user id)."""
    with_body_user(owner, schedule.user_id)
    _request_of(schedule, ctx, schedule.created_at)


def _request_of(schedule: Schedule, ctx: ApiContext, fire_at: float) -> NewRequest:
    try:
        return build_request(
            schedule,
            fire_at,
            config=ctx.config,
            triggers=ctx.triggers,
            agent_id=lambda agent: ctx.agents.get(agent).id,
            run_now=True,
        )
    except ResourceNotFound as exc:
        raise InvalidRequest(exc.message, details={"schedule": schedule.name}) from None
