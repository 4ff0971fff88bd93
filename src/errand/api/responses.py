"""OpenAI's Responses API (background mode) over errand's durable requests.

Each Response IS an errand request (kind `response`, visible in GET /v1/requests too), created
through the same submit path as /v1/chat (api/submit.py: idempotency keys, the queue cap, the
`errand.submit` span). `model` names the agent; `previous_response_id` puts the new turn in the
previous one's session, so turns run in order (a chain's session is its first response's id).
`background: true` answers at once (`queued`); otherwise the call waits like a sync chat, at
most `async.sync_wait_seconds`, and answers the Response as it is then. `stream: true` answers
with OpenAI's streaming events (api/response_events.py), and GET ?stream=true&starting_after=N
resumes them without loss or repetition. The Response object and the status mapping are pure,
in api/response_objects.py; errors leave in OpenAI's shape (api/openai_errors.py).

DELETE forgets the response (`store.forget`: the purge's tombstone, made now): its input, output,
metadata, events, deliveries and attempts are gone; GET and a second DELETE answer 404, and it
leaves GET /v1/requests (GET /v1/requests/{req_id} answers 410, as for a purged request). One not
yet ended is cancelled first (a running attempt is stopped and writes nothing more).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, get_owned
from errand.api.body import parse_object, read_body
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.api.requests import wait_terminal
from errand.api.response_events import StreamMapper, encode
from errand.api.response_objects import (
    KIND,
    Turn,
    chain_of,
    is_response,
    request_id_of,
    response_id,
    response_object,
)
from errand.api.responses_body import ResponsesBody, validate_responses
from errand.api.sse import HEADERS, KEEPALIVE, EventStreamResponse
from errand.api.submit import estimate_for, idempotency_key, max_attempts, submit
from errand.clock import new_request_id
from errand.errors import Conflict, ErrandError, InvalidRequest, NotFound, RequestExpired, ResourceNotFound
from errand.models import PRIORITY_ASYNC, PRIORITY_SYNC, Mode, NewRequest, Status
from errand.models import Request as StoredRequest

RESPONSES_PATH = "/v1/responses"
BATCH = 500

log = logging.getLogger("errand.api")


async def create_response(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/responses."""
    raw = await read_body(request, ctx.config.server.max_body_bytes)
    data = parse_object(raw, ctx.config.server.max_json_depth)
    body = validate_responses(data)
    idempotency = idempotency_key(request, owner, data, RESPONSES_PATH)
    agent_id = _agent_for(ctx, body.model)
    previous = await _previous(ctx, owner, body.previous_response_id)
    new = await _new_request(ctx, owner, body, agent_id, previous)
    req = await submit(ctx, new, idempotency, request.headers)
    if body.stream:
        return _stream(ctx, req, -1)
    if not body.background:
        req = await wait_terminal(ctx.store, req, ctx.config.async_.sync_wait)
    return json_response(response_object(req))


async def get_response(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/responses/{id}; `?stream=true&starting_after=N` (re)plays its events."""
    req = await _owned(ctx, owner, request.path_params["response_id"])
    query = request.query_params
    if _flag(query.get("stream"), "stream"):
        after = _starting_after(query.get("starting_after"))
        if request.method == "HEAD":  # the headers only: a stream would hold the call to its end
            return Response(headers=HEADERS, media_type=EventStreamResponse.media_type)
        return _stream(ctx, req, after)
    return json_response(response_object(req))


async def cancel_response(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """POST /v1/responses/{id}/cancel: cancelled at once; again is a no-op; 409 once ended."""
    req = await _owned(ctx, owner, request.path_params["response_id"])
    if req.status is not Status.CANCELLED:
        req = await _cancel(ctx, req)
    return json_response(response_object(req))


async def delete_response(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """DELETE /v1/responses/{id}: cancelled first if unfinished, then forgotten (see the module)."""
    resp_id = request.path_params["response_id"]
    req = await _owned(ctx, owner, resp_id)
    if not req.is_terminal:
        with contextlib.suppress(Conflict):  # it ended meanwhile: forgotten as it ended
            req = await _cancel(ctx, req)
    try:
        await ctx.store.forget(req.id)
    except (NotFound, RequestExpired):  # deleted by a concurrent DELETE
        raise _missing(resp_id) from None
    log.info("deleted response %s", req.id, extra={"request_id": req.id})
    return json_response({"id": response_id(req.id), "object": "response.deleted", "deleted": True})


async def _cancel(ctx: ApiContext, req: StoredRequest) -> StoredRequest:
    try:
        req, how = await ctx.store.request_cancel(req.id)
    except Conflict:
        req = await ctx.store.get(req.id)
        if req.status is Status.CANCELLED:  # cancelled by someone else in between
            return req
        raise Conflict(
            f"Response {response_id(req.id)} is already {req.status.value} and cannot be cancelled",
            details={"field": "response_id", "status": req.status.value},
        ) from None
    log.info("cancelled response %s (%s)", req.id, how, extra={"request_id": req.id})
    return req


def _agent_for(ctx: ApiContext, model: str) -> str:
    """The agent `model` names; an unknown one is OpenAI's 400 model_not_found, listing ids."""
    try:
        return ctx.agents.get(model).id
    except ResourceNotFound:
        valid = sorted(agent.id for agent in ctx.config.agents)
        raise InvalidRequest(
            f"The model {model!r} does not exist; the models (agents) here are: {', '.join(valid)}",
            details={"field": "model", "openai_code": "model_not_found", "valid": valid},
        ) from None


async def _owned(ctx: ApiContext, owner: Owner, resp_id: str) -> StoredRequest:
    """The caller's Response by its id; anything else (not a response id, another owner's, a
    chat request) answers 404 like an unknown id."""
    request_id = request_id_of(resp_id)
    if request_id is None:
        raise _missing(resp_id)
    try:
        req = await get_owned(ctx.store, owner, request_id)
    except (NotFound, RequestExpired):  # deleted or purged: OpenAI knows no "expired"
        raise _missing(resp_id) from None
    if not is_response(req):
        raise _missing(resp_id)
    return req


def _missing(resp_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"No response found with id {resp_id!r}", details={"field": "response_id"})


async def _previous(ctx: ApiContext, owner: Owner, previous: str | None) -> StoredRequest | None:
    """The response `previous_response_id` names (None: the new one starts its own chain)."""
    if previous is None:
        return None
    try:
        return await _owned(ctx, owner, previous)
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Previous response with id {previous!r} not found", details={"field": "previous_response_id"}
        ) from None


async def _new_request(
    ctx: ApiContext, owner: Owner, body: ResponsesBody, agent_id: str, previous: StoredRequest | None
) -> NewRequest:
    """A chain's turns share its first response's session (so they run in order), and each
    carries the chain's conversation so far (`chain_of`) for its agent (ctx.messages)."""
    message = body.message()
    request_id = new_request_id()
    history = [] if previous is None else chain_of(previous)
    session = None if previous is None else previous.session_id or response_id(previous.id)
    turn = Turn(
        body.model, body.background, body.instructions, body.previous_response_id, body.messages(), history
    )
    waits = not body.background and not body.stream
    return NewRequest(
        id=request_id,
        owner=owner.key_id,
        user_id=owner.user_id,
        message=message,
        kind=KIND,
        agent=agent_id,
        session_id=session or response_id(request_id),
        metadata=turn.to_metadata(dict(body.metadata or {})),
        webhook_url=None,
        mode=Mode.SYNC if waits else Mode.ASYNC,
        max_attempts=max_attempts(ctx, agent_id),
        estimated_seconds=await estimate_for(ctx, agent_id, message),
        priority=PRIORITY_SYNC if waits else PRIORITY_ASYNC,
        aging_seconds=ctx.config.limits.priority_aging_seconds,
        on_busy="enqueue",
    )


def _stream(ctx: ApiContext, req: StoredRequest, after: int) -> Response:
    frames = _frames(ctx, req, after)
    return EventStreamResponse(frames, headers={**HEADERS, "X-Request-Id": req.id})


async def _frames(ctx: ApiContext, req: StoredRequest, after: int) -> AsyncIterator[bytes]:
    """The Response's OpenAI events numbered after `after`: the log replayed from its start
    through the mapper, then followed live until the terminal event."""
    store, mapper, seq = ctx.store, StreamMapper(req), 0
    heartbeat = ctx.config.server.sse_heartbeat_seconds
    try:
        while not mapper.done:
            events = await store.events_since(req.id, seq, BATCH)
            chunk = [encode(e) for ev in events for e in mapper.feed(ev) if e["sequence_number"] > after]
            if chunk:
                yield b"".join(chunk)
            if events:
                seq = events[-1].seq
                continue
            if not await store.wait_for_change(req.id, seq, heartbeat):
                yield KEEPALIVE
    except ErrandError as exc:  # purged meanwhile, or the store went away: the client resumes
        log.info("response stream of %s ended early: %s", req.id, exc.message, extra={"request_id": req.id})


def _flag(value: str | None, name: str) -> bool:
    if value is None or value in ("", "false"):
        return False
    if value == "true":
        return True
    raise InvalidRequest(f"{name} must be true or false", details={"field": name})


def _starting_after(value: str | None) -> int:
    """The sequence number to resume after; -1 (from the first event) when not given."""
    if value is None or value == "":
        return -1
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise InvalidRequest(
            "starting_after must be the sequence_number (an integer >= 0) of an event of this stream",
            details={"field": "starting_after"},
        )
    return int(value)
