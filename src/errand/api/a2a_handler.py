"""a2a-sdk's RequestHandler backed by errand: every A2A method is a durable errand request.

a2a-sdk's JSON-RPC dispatcher parses and answers the protocol; this class only maps it onto
what errand already does: a send is `store.submit` (through api/submit.py, so queue caps,
webhook URL checks and metrics are the same as POST /v1/chat), a task is a request
(`a2a_mapping.to_task`), cancel is `store.request_cancel`, a stream or a resubscription is the
request's event log (`a2a_stream`); a send naming an input-required task (`message.taskId`)
answers its question (`a2a_answer`). The caller is errand's `Owner` (its key), put in the call
context by api/a2a_routes.py; a task of another key or user is "not found".
A push-notification config (given with a send, or set later) is the request's one webhook URL
(`store.set_webhook`; its id is `webhook`): errand signs the delivery (Standard Webhooks, with
its webhook secret; a config's `token` is not used) and sends it when the task ends.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import (
    InternalError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import MessageToDict

from errand.api.a2a_answer import answer_task
from errand.api.a2a_mapping import message_text, to_task
from errand.api.a2a_stream import Position, resume_position, task_stream
from errand.api.auth import Owner, get_owned, list_filter
from errand.api.context import ApiContext
from errand.api.requests import wait_terminal
from errand.api.submit import check_webhook_url, estimate_for, max_attempts, submit
from errand.clock import new_request_id
from errand.errors import Conflict, ErrandError, InvalidRequest, NotFound, RequestExpired
from errand.models import PRIORITY_BY_ORIGIN, PRIORITY_TRIGGER, Mode, NewRequest
from errand.models import Request as StoredRequest
from errand.triggers import find_trigger

OWNER_STATE = "errand_owner"
"""ServerCallContext.state key of the caller's Owner (set by api/a2a_routes.py)."""
WEBHOOK_CONFIG_ID = "webhook"
"""The id of a task's one push-notification config: errand's signed webhook of the request."""
MAX_LIST = 100

log = logging.getLogger("errand.api")


class ErrandRequestHandler(RequestHandler):
    """The A2A methods over errand's store; one per app."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message:
        with _errors():
            req = await self._accept(params, context)
            if not params.configuration.return_immediately:
                wait = self._ctx.config.server.max_wait_seconds
                req = await wait_terminal(self._ctx.store, req, wait)
            return to_task(req)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        with _errors():
            req = await self._accept(params, context)
        async for event in self._follow(req, (req.seq, 0)):
            yield event

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        with _errors():
            req = await self._owned(context, params.id)
            after = resume_position(_headers(context))
        async for event in self._follow(req, (req.seq, 0) if after is None else after):
            yield event

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        with _errors():
            return to_task(await self._owned(context, params.id))

    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        with _errors():
            owner_id, user_id = list_filter(_owner(context))
            limit = min(params.page_size or MAX_LIST, MAX_LIST)
            page = await self._ctx.store.list(
                owner=owner_id, user_id=user_id, limit=limit, cursor=params.page_token or None
            )
            tasks = [to_task(r, history=False) for r in page.requests]
            if params.context_id:
                tasks = [t for t in tasks if t.context_id == params.context_id]
            return ListTasksResponse(tasks=tasks, next_page_token=page.next_cursor or "", page_size=limit)

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        with _errors():
            req = await self._owned(context, params.id)
            if req.is_terminal and req.status.value != "cancelled":
                raise TaskNotCancelableError(f"task {params.id} is already {req.status.value}")
            try:
                req, how = await self._ctx.store.request_cancel(req.id)
            except Conflict:
                raise TaskNotCancelableError(f"task {params.id} has already ended") from None
            log.info("cancelled %s over A2A (%s)", req.id, how, extra={"request_id": req.id})
            return to_task(req)

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        """The task's webhook (errand has one per request: a new config replaces it)."""
        with _errors():
            req = await self._owned(context, params.task_id)
            await check_webhook_url(params.url, self._ctx)
            req = await self._ctx.store.set_webhook(req.id, params.url)
            log.info("webhook of %s set over A2A", req.id, extra={"request_id": req.id})
            return _push_config(params.task_id, params.url)

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        with _errors():
            req = await self._owned(context, params.task_id)
            return _push_config(params.task_id, _configured(req, params.task_id, params.id))

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        with _errors():
            req = await self._owned(context, params.task_id)
            configs = [] if req.webhook_url is None else [_push_config(params.task_id, req.webhook_url)]
            return ListTaskPushNotificationConfigsResponse(configs=configs)

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        with _errors():
            req = await self._owned(context, params.task_id)
            if req.webhook_url is None or params.id not in ("", WEBHOOK_CONFIG_ID):
                raise TaskNotFoundError(
                    f"task {params.task_id} has no push-notification config {params.id!r}"
                )
            await self._ctx.store.set_webhook(req.id, None)

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise UnsupportedOperationError("this agent has no extended agent card")

    async def _follow(self, req: StoredRequest, after: Position) -> AsyncIterator[Event]:
        with _errors():
            async for event in task_stream(self._ctx.store, req, after):
                yield event

    async def _owned(self, context: ServerCallContext, task_id: str) -> StoredRequest:
        return await get_owned(self._ctx.store, _owner(context), task_id)

    async def _accept(self, params: SendMessageRequest, context: ServerCallContext) -> StoredRequest:
        """A message naming a task answers its question (api/a2a_answer.py); any other is a new
        durable request (through api/submit.py)."""
        if not params.message.task_id:
            new = await self._new_request(params, _owner(context))
            return await submit(self._ctx, new, None, _headers(context))
        req = await answer_task(self._ctx, _owner(context), params.message)
        webhook = params.configuration.task_push_notification_config.url
        if webhook and webhook != req.webhook_url and not req.is_terminal:
            await check_webhook_url(webhook, self._ctx)
            req = await self._ctx.store.set_webhook(req.id, webhook)
        return req

    async def _new_request(self, params: SendMessageRequest, owner: Owner) -> NewRequest:
        message = params.message
        text, requested, trigger = self._input(params)
        agent_id = self._ctx.agents.get(requested).id
        webhook = params.configuration.task_push_notification_config.url or None
        if webhook is not None:
            await check_webhook_url(webhook, self._ctx)
        return NewRequest(
            id=new_request_id(),
            owner=owner.key_id,
            user_id=owner.user_id,
            message=text,
            kind="chat" if trigger is None else "trigger",
            agent=None if requested is None and self._ctx.config.router is not None else agent_id,
            session_id=message.context_id or f"ctx_{uuid.uuid4().hex}",
            metadata={"a2a_message_id": message.message_id},
            trigger=trigger,
            webhook_url=webhook,
            mode=Mode.ASYNC,
            max_attempts=max_attempts(self._ctx, agent_id),
            estimated_seconds=await estimate_for(self._ctx, agent_id, text),
            priority=PRIORITY_BY_ORIGIN["auto"] if trigger is None else PRIORITY_TRIGGER,
            aging_seconds=self._ctx.config.limits.priority_aging_seconds,
        )

    def _input(self, params: SendMessageRequest) -> tuple[str, str | None, str | None]:
        """(message text, agent asked for, trigger): the text parts, or with `metadata.trigger`
        that trigger's template rendered with the message's first data part (a trigger skill)."""
        name = _metadata_str(params, "trigger")
        if name is None:
            text = message_text(params.message)
            if not text.strip():
                raise InvalidRequest("the message needs a text part", details={"field": "message.parts"})
            return text, _metadata_str(params, "agent_id"), None
        trigger = find_trigger(self._ctx.triggers, name.removeprefix("trigger:"))
        data = next((MessageToDict(p.data) for p in params.message.parts if p.HasField("data")), {})
        text = trigger.render(data)
        if not text.strip():
            raise InvalidRequest(f"trigger {trigger.name!r} rendered an empty message with this data")
        return text, trigger.agent, trigger.name


def _metadata_str(params: SendMessageRequest, key: str) -> str | None:
    for source in (params.message.metadata, params.metadata):
        if key in source.fields:
            value = source.fields[key]
            if value.WhichOneof("kind") != "string_value" or not value.string_value:
                raise InvalidRequest(f"metadata.{key} must be a non-empty string", details={"field": key})
            return str(value.string_value)
    return None


def _configured(req: StoredRequest, task_id: str, config_id: str) -> str:
    """The webhook URL of the task's one config, named by `config_id` ("" or `webhook`)."""
    if req.webhook_url is None or config_id not in ("", WEBHOOK_CONFIG_ID):
        raise TaskNotFoundError(f"task {task_id} has no push-notification config {config_id!r}")
    return req.webhook_url


def _push_config(task_id: str, url: str) -> TaskPushNotificationConfig:
    return TaskPushNotificationConfig(id=WEBHOOK_CONFIG_ID, task_id=task_id, url=url)


def _owner(context: ServerCallContext) -> Owner:
    owner = context.state.get(OWNER_STATE)
    if not isinstance(owner, Owner):  # the route authenticates first: this is a wiring bug
        raise InternalError("the A2A call was not authenticated")
    return owner


def _headers(context: ServerCallContext) -> dict[str, str]:
    headers = context.state.get("headers")
    return dict(headers) if isinstance(headers, dict) else {}


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """errand's errors as the A2A errors a client maps: unknown -> TaskNotFound, bad input ->
    InvalidParams; anything unexpected is logged with its traceback, then InternalError."""
    try:
        yield
    except (NotFound, RequestExpired) as exc:
        raise TaskNotFoundError(exc.message) from None
    except (InvalidRequest, Conflict) as exc:
        raise InvalidParamsError(exc.message) from None
    except ErrandError as exc:
        raise InternalError(f"{exc.code}: {exc.message}") from None
    except Exception as exc:
        if type(exc).__module__.startswith("a2a."):
            raise
        log.exception("A2A call failed")
        raise InternalError("internal error") from None
