"""POST /v1/triggers/{name}, GET /v1/triggers and GET /v1/triggers/{name}: templates fired as requests.

A trigger (triggers.py: `triggers/NAME.md`, front matter + `${{ data.x }}` template) turns a
JSON payload into a chat message. Firing one is a submit like POST /v1/chat, through the same
steps (api/submit.py): idempotency keys scoped to `/v1/triggers/NAME`, the webhook URL check,
the durable `store.submit` before any answer, and the same 202 / sync-200 answers.

The body is either the envelope `{"data": {...}, "use_async", "session_id", "webhook_url"}` or
the payload itself, so a GitHub or Stripe webhook can post straight in. It is the envelope only
when it has a `data` key and no key outside those four: a Stripe event also has a `data` key,
but beside `id`, `type`, `object`..., so it is rightly taken whole. A raw payload's own fields
are never read as settings (a `use_async` inside a payload is data).

Decisions, each in order of precedence:
- async or not: body `use_async`, the front matter's `use_async`, else async. The query string
  is never read (MUXI's SDK always sends `?async=false` and MUXI ignores it; so do we);
- agent: the front matter's `agent`, else the default agent (checked at startup);
- webhook URL: body, front matter, else `async.webhook_url`; whichever wins passes the SSRF
  guard at submit (422), since a front-matter URL is also fetched from inside the network.

Triggers are read once at startup (`load_formation_triggers`): a broken file, an unknown agent
or a webhook URL that cannot be signed stops the server with a message naming the file, rather
than failing each call. Unknown names answer 404 RESOURCE_NOT_FOUND; no answer ever shows a
file path, the template source or a front-matter webhook URL. A trigger's 202 carries
`estimated_seconds` as chat's does, though its mode is never chosen by the estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner
from errand.api.body import invalid_from, parse_object, read_body
from errand.api.context import AgentLookup, ApiContext
from errand.api.errors import json_response
from errand.api.submit import answer, check_webhook_url, estimate_for, idempotency_key, max_attempts, submit
from errand.clock import new_request_id
from errand.config import Config
from errand.errors import ConfigError, InvalidRequest, ResourceNotFound
from errand.models import PRIORITY_TRIGGER, Mode, NewRequest
from errand.triggers import Trigger, find_trigger, load_triggers

TRIGGERS_PATH = "/v1/triggers"
ENVELOPE_KEYS = ("data", "session_id", "use_async", "webhook_url")


class TriggerBody(BaseModel):
    """The envelope of POST /v1/triggers/{name} (a raw payload becomes `data` alone)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    data: dict[str, Any]
    use_async: bool | None = None
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    webhook_url: str | None = Field(default=None, max_length=2048)


def parse_trigger_body(raw: bytes, max_depth: int) -> tuple[dict[str, Any], TriggerBody]:
    """(the JSON object as sent, for the idempotency fingerprint; the envelope it stands for).

    An empty body is `{}` (a cron job firing a trigger without fields need not send one)."""
    sent: dict[str, Any] = parse_object(raw, max_depth) if raw.strip() else {}
    if "data" not in sent or not set(sent) <= set(ENVELOPE_KEYS):
        return sent, TriggerBody(data=sent)
    try:
        return sent, TriggerBody.model_validate(sent)
    except ValidationError as exc:
        raise invalid_from(exc, list(ENVELOPE_KEYS)) from None


async def fire_trigger(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/triggers/{name}: render the template with the data and submit it as a request."""
    trigger = find_trigger(ctx.triggers, request.path_params["name"])
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    sent, body = parse_trigger_body(raw, ctx.config.server.max_json_depth)
    idempotency = idempotency_key(request, owner, sent, f"{TRIGGERS_PATH}/{trigger.name}")
    message = trigger.render(body.data)
    if not message:
        raise InvalidRequest(
            f"trigger {trigger.name!r} rendered an empty message with this data",
            details={"trigger": trigger.name},
        )
    agent_id = ctx.agents.get(trigger.agent).id
    webhook = body.webhook_url or trigger.webhook_url or ctx.config.async_.webhook_url
    if webhook is not None:
        await check_webhook_url(webhook, ctx)
    use_async = next((v for v in (body.use_async, trigger.use_async) if v is not None), True)
    new = NewRequest(
        id=new_request_id(),
        owner=owner.key_id,
        user_id=owner.user_id,
        message=message,
        kind="trigger",
        agent=agent_id,
        session_id=body.session_id,
        trigger=trigger.name,
        webhook_url=webhook,
        mode=Mode.ASYNC if use_async else Mode.SYNC,
        max_attempts=max_attempts(ctx, agent_id),
        estimated_seconds=await estimate_for(ctx, agent_id, message),
        priority=PRIORITY_TRIGGER,
        aging_seconds=ctx.config.limits.priority_aging_seconds,
    )
    return await answer(request, await submit(ctx, new, idempotency, request.headers), ctx)


async def list_triggers(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/triggers: every trigger's name, description, fields, agent and default mode."""
    triggers = [t.public() for t in ctx.triggers.values()]
    return json_response({"formation_id": ctx.config.name, "triggers": triggers, "count": len(triggers)})


async def get_trigger(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/triggers/{name}: one trigger as the list shows it (MUXI has this route too)."""
    return json_response(find_trigger(ctx.triggers, request.path_params["name"]).public())


def load_formation_triggers(config: Config, agents: AgentLookup) -> Mapping[str, Trigger]:
    """The formation's triggers, checked against the agents at startup."""
    triggers = load_triggers(config.base_dir)
    for trigger in triggers.values():
        label = f"triggers/{trigger.name}.md"
        if trigger.agent is not None:
            try:
                agents.get(trigger.agent)
            except ResourceNotFound:
                raise ConfigError(f"{label}: agent {trigger.agent!r} is not configured") from None
    return triggers
