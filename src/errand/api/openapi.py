"""GET /openapi.json: the OpenAPI 3.1 document, generated from the route table and the models.

Nothing in the document is written by hand twice: request bodies are the very pydantic models
that validate them (ChatBody, TriggerBody), answers are the models of api/schemas.py that tests
hold the real answers to, and every error response comes from the one error table
(error_status.py `STATUS`, the codes of the errors.py classes). `OPERATIONS` holds one line per
method and path; a test enumerates the app's routes and fails for any route not in it.

The formation-prefixed shape `/api/{formation_id}/v1/...` is the same API under a second base
URL, so it is documented as a second entry of `servers` (with `formation_id` as a server
variable), not as a copy of every path: clients and generators see one operation per route.
The unversioned operational paths (/health, /ready, /metrics, the docs) exist only at the root,
which their path-level `servers` says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from errand.api.admin_deliveries import RedeliverBody
from errand.api.bulk import CancelBody
from errand.api.chat import ChatBody
from errand.api.console_schemas import (
    AdminDeliveryList,
    BulkCancelled,
    BulkMatch,
    BulkRedelivered,
    OverviewDocument,
    SessionDocument,
)
from errand.api.console_session import SignInBody
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.api.inputs import InputBody
from errand.api.openai_errors import STATUS_OVERRIDE
from errand.api.openapi_parts import (
    ADMIN_DELIVERIES,
    CSRF,
    IDEMPOTENCY,
    LAST_EVENT,
    LIST,
    RESUME,
    SECURITY,
    SECURITY_SCHEMES,
    SSE_EVENT,
    USER,
    WAIT,
    Query,
)
from errand.api.responses_body import ResponsesBody
from errand.api.schedules import SchedulePatch
from errand.api.schemas import (
    Accepted,
    AgentDocument,
    AgentList,
    AttemptList,
    CancelAnswer,
    DeliveryList,
    ErrorBody,
    Health,
    InputAnswer,
    JsonRpcAnswer,
    JsonRpcCall,
    OpenAIErrorBody,
    Ready,
    Redelivery,
    RequestList,
    ResponseDeleted,
    ResponseObject,
    ScheduleDeleted,
    ScheduleDocument,
    ScheduleList,
    StatusDocument,
    TriggerDocument,
    TriggerList,
    WebhookSecret,
)
from errand.api.triggers import TriggerBody
from errand.error_status import status_of_class
from errand.errors import (
    Conflict,
    CsrfFailed,
    ErrandError,
    Forbidden,
    HeadersTooLarge,
    InputAlreadyAnswered,
    InputNotOutstanding,
    InvalidRequest,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestExpired,
    RequestTimeout,
    ResourceNotFound,
    ServiceUnavailable,
    Unauthorized,
)
from errand.schedules.spec import ScheduleSpec

__all__ = ["OPERATIONS", "OpenApi", "Operation", "Query", "openapi_document"]

Answer = type[BaseModel] | str
"""A documented answer: a model (application/json) or a media type whose body is text."""


@dataclass(frozen=True)
class Operation:
    """One method of one route, as documented. `ok`: status -> answer(s); `errors`: the
    ErrandError classes the handler raises (their statuses and codes come from the error table;
    auth, routing and connection errors are added by `auth` and the path)."""

    method: str
    path: str
    summary: str
    ok: dict[int, Answer | tuple[Answer, ...]]
    errors: tuple[type[ErrandError], ...] = ()
    auth: Literal["client", "admin", "none"] = "client"
    body: type[BaseModel] | None = None
    params: tuple[Query, ...] = ()
    root_only: bool = False  # not under /api/{formation_id}
    tag: str = "requests"
    openai: bool = False  # errors in OpenAI's shape (api/openai_errors.py)


SSE = "text/event-stream"
NO_CONTENT = ""
READ = (NotFound, RequestExpired, InvalidRequest)
SUBMIT = (InvalidRequest, ResourceNotFound, MalformedBody, PayloadTooLarge, Conflict)
WRITE = (InvalidRequest, MalformedBody, PayloadTooLarge, Conflict)
SESSION = (Unauthorized,)
BULK = (InvalidRequest, MalformedBody, PayloadTooLarge, Conflict)

# One line per operation: adding a route is adding a line here.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "/v1/chat", "A chat turn: sync, async or auto", {200: (StatusDocument, SSE), 202: Accepted}, SUBMIT, body=ChatBody, params=(IDEMPOTENCY,), tag="chat"),  # noqa: E501
    Operation("GET", "/v1/requests", "The caller's requests, newest first", {200: RequestList}, (InvalidRequest,), params=LIST),  # noqa: E501
    Operation("GET", "/v1/requests/{request_id}", "Status, result and input of a request", {200: StatusDocument}, READ, params=(WAIT,)),  # noqa: E501
    Operation("DELETE", "/v1/requests/{request_id}", "Cancel a request", {200: CancelAnswer}, (*READ, Conflict)),  # noqa: E501
    Operation("GET", "/v1/requests/{request_id}/events", "The request's events as Server-Sent Events", {200: SSE}, READ, params=LAST_EVENT),  # noqa: E501
    Operation("POST", "/v1/requests/{request_id}/input", "Answer the question a request waits on", {202: InputAnswer}, (*READ, InputNotOutstanding, InputAlreadyAnswered, MalformedBody, PayloadTooLarge), body=InputBody),  # noqa: E501
    Operation("GET", "/v1/requests/{request_id}/attempts", "Every attempt: worker, outcome, error (admins: traceback)", {200: AttemptList}, READ),  # noqa: E501
    Operation("GET", "/v1/requests/{request_id}/deliveries", "Webhook delivery attempts", {200: DeliveryList}, READ, tag="webhooks"),  # noqa: E501
    Operation("POST", "/v1/requests/{request_id}/redeliver", "Send the webhook again", {202: Redelivery}, (NotFound, RequestExpired, Conflict), auth="admin", tag="webhooks"),  # noqa: E501
    Operation("GET", "/v1/admin/webhook-secret", "The webhook signing secret", {200: WebhookSecret}, auth="admin", tag="webhooks"),  # noqa: E501
    Operation("GET", "/v1/admin/overview", "The console's overview: queue, running, last hour per agent, webhooks, workers", {200: OverviewDocument}, (Forbidden,), auth="admin", tag="console"),  # noqa: E501
    Operation("GET", "/v1/admin/deliveries", "Webhook deliveries across requests, newest first", {200: AdminDeliveryList}, (InvalidRequest,), auth="admin", params=ADMIN_DELIVERIES, tag="console"),  # noqa: E501
    Operation("POST", "/v1/admin/deliveries/redeliver", "Redeliver chosen requests' webhooks, or every failed one (dry run first)", {200: (BulkRedelivered, BulkMatch)}, BULK, auth="admin", body=RedeliverBody, tag="console"),  # noqa: E501
    Operation("POST", "/v1/admin/requests/cancel", "Cancel the queued requests a filter matches (dry run first)", {200: (BulkCancelled, BulkMatch)}, BULK, auth="admin", body=CancelBody, tag="console"),  # noqa: E501
    Operation("GET", "/v1/triggers", "The formation's triggers", {200: TriggerList}, tag="triggers"),
    Operation("GET", "/v1/triggers/{name}", "One trigger", {200: TriggerDocument}, (ResourceNotFound,), tag="triggers"),  # noqa: E501
    Operation("POST", "/v1/triggers/{name}", "Fire a trigger (async by default)", {200: StatusDocument, 202: Accepted}, SUBMIT, body=TriggerBody, params=(IDEMPOTENCY,), tag="triggers"),  # noqa: E501
    Operation("POST", "/v1/responses", "OpenAI Responses API: create (background, stream, or wait)", {200: (ResponseObject, SSE)}, SUBMIT, body=ResponsesBody, params=(IDEMPOTENCY,), tag="openai", openai=True),  # noqa: E501
    Operation("GET", "/v1/responses/{response_id}", "A Response; with stream=true its events, resumable", {200: (ResponseObject, SSE)}, READ, params=RESUME, tag="openai", openai=True),  # noqa: E501
    Operation("DELETE", "/v1/responses/{response_id}", "Delete a Response: cancelled first if unfinished, then its content forgotten (404 after)", {200: ResponseDeleted}, READ, tag="openai", openai=True),  # noqa: E501
    Operation("POST", "/v1/responses/{response_id}/cancel", "Cancel a Response (again: no-op)", {200: ResponseObject}, (*READ, Conflict), tag="openai", openai=True),  # noqa: E501
    Operation("GET", "/v1/agents", "The formation's agents and their expected durations", {200: AgentList}, tag="agents"),  # noqa: E501
    Operation("GET", "/v1/agents/{agent_id}", "One agent", {200: AgentDocument}, (ResourceNotFound,), tag="agents"),  # noqa: E501
    Operation("GET", "/v1/schedules", "Every schedule, by name", {200: ScheduleList}, auth="admin", tag="schedules"),  # noqa: E501
    Operation("POST", "/v1/schedules", "Create a schedule (cron or every; a trigger or a message)", {201: ScheduleDocument}, WRITE, auth="admin", body=ScheduleSpec, tag="schedules"),  # noqa: E501
    Operation("GET", "/v1/schedules/{schedule_id}", "One schedule (by id or name), next fire time included", {200: ScheduleDocument}, (ResourceNotFound,), auth="admin", tag="schedules"),  # noqa: E501
    Operation("PATCH", "/v1/schedules/{schedule_id}", "Change, pause or resume a schedule", {200: ScheduleDocument}, (ResourceNotFound, *WRITE), auth="admin", body=SchedulePatch, tag="schedules"),  # noqa: E501
    Operation("POST", "/v1/schedules/{schedule_id}/run", "Fire a schedule now (a request of kind schedule)", {202: Accepted}, (ResourceNotFound, InvalidRequest, Conflict), auth="admin", tag="schedules"),  # noqa: E501
    Operation("DELETE", "/v1/schedules/{schedule_id}", "Delete a schedule (its firings stay)", {200: ScheduleDeleted}, (ResourceNotFound, Conflict), auth="admin", tag="schedules"),  # noqa: E501
    Operation("POST", "/ui/session", "Console sign-in with an admin or viewer key (sets the session cookie)", {200: SessionDocument}, (*SESSION, Forbidden, RateLimited, InvalidRequest, MalformedBody, PayloadTooLarge), auth="none", body=SignInBody, root_only=True, tag="console"),  # noqa: E501
    Operation("GET", "/ui/session", "The console session of the cookie", {200: SessionDocument}, SESSION, auth="none", root_only=True, tag="console"),  # noqa: E501
    Operation("DELETE", "/ui/session", "Console sign-out (needs X-CSRF-Token)", {204: NO_CONTENT}, (*SESSION, CsrfFailed), auth="none", params=(CSRF,), root_only=True, tag="console"),  # noqa: E501
    Operation("GET", "/.well-known/agent-card.json", "The A2A agent card: skills, capabilities, auth (with the a2a extra)", {200: "application/json"}, auth="none", root_only=True, tag="a2a"),  # noqa: E501
    Operation("POST", "/a2a", "A2A JSON-RPC 2.0 endpoint (a2a-sdk's protocol version; with the a2a extra)", {200: (JsonRpcAnswer, SSE)}, (MalformedBody, PayloadTooLarge), body=JsonRpcCall, root_only=True, tag="a2a"),  # noqa: E501
    Operation("GET", "/v1/health", "Liveness and version", {200: Health}, auth="none", tag="operations"),
    Operation("GET", "/health", "Liveness and version", {200: Health}, auth="none", root_only=True, tag="operations"),  # noqa: E501
    Operation("GET", "/ready", "Readiness: the database takes a write", {200: Ready, 503: Ready}, auth="none", root_only=True, tag="operations"),  # noqa: E501
    Operation("GET", "/metrics", "Prometheus metrics", {200: "text/plain"}, auth="none", root_only=True, tag="operations"),  # noqa: E501
    Operation("GET", "/openapi.json", "This document", {200: "application/json"}, auth="none", root_only=True, tag="operations"),  # noqa: E501
    Operation("GET", "/docs", "The API reference page (works offline)", {200: "text/html"}, auth="none", root_only=True, tag="operations"),  # noqa: E501
    Operation("GET", "/ui", "The web console (sign in with an admin or viewer key; off with ui.enabled: false)", {200: "text/html"}, auth="none", root_only=True, tag="console"),  # noqa: E501
    Operation("GET", "/ui/static/{asset}", "The console's scripts, stylesheet and icon", {200: ("text/javascript", "text/css", "image/svg+xml")}, (ResourceNotFound,), auth="none", root_only=True, tag="console"),  # noqa: E501
    Operation("GET", "/docs/{asset}", "The reference page's scripts and styles", {200: ("text/css", "text/javascript")}, (ResourceNotFound,), auth="none", root_only=True, tag="operations"),  # noqa: E501
)
# fmt: on
"""Every documented operation; a route of the app missing here fails tests/unit/test_openapi.py."""

ALWAYS = (MethodNotAllowed, RequestTimeout, HeadersTooLarge, ServiceUnavailable)
"""Errors any route can answer: a method routed elsewhere (an encoded `/` in a path parameter),
and the connection layer's (api/connections.py)."""
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    ChatBody: {"message": "Summarise the open tickets", "mode": "async"},
    TriggerBody: {"data": {"issue": {"title": "Crash on start"}}, "use_async": True},
    ScheduleSpec: {"name": "nightly", "cron": "0 2 * * *", "timezone": "Europe/Riga", "message": "Summarise"},
    SchedulePatch: {"enabled": False},
    SignInBody: {"key": "an-admin-or-viewer-key"},
    CancelBody: {"filter": {"status": "pending", "agent": "echo"}, "dry_run": True},
    RedeliverBody: {"filter": {"state": "failed"}, "dry_run": True},
    ResponsesBody: {"model": "researcher", "input": "Summarise the open tickets", "background": True},
    JsonRpcCall: {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "Hello"}]}},
    },
    InputBody: {"input_id": "inp_3Vq8kQ2mXc1aLp0z", "value": {"approved": True}},
}
BODIES = tuple(EXAMPLES)
_PATH_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/{model}"


def openapi_document(formation: str, version: str) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for a formation named `formation`."""
    models = _models()
    keyed, top = models_json_schema(
        [(m, "validation" if m in BODIES else "serialization") for m in models],
        ref_template=_REF,
    )
    refs: dict[type[BaseModel], Any] = {
        m: keyed[(m, mode)]["$ref"] for (m, mode) in keyed if isinstance(m, type) and issubclass(m, BaseModel)
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item = paths.setdefault(op.path, {})
        if op.root_only:
            item["servers"] = [{"url": "/"}]
        item[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"errand: {formation}",
            "version": version,
            "description": "Durable async operations for AI agents. Every /v1 path also exists, "
            "identically, under /api/{formation_id} (the second server).",
        },
        "servers": [
            {"url": "/", "description": "This server"},
            {
                "url": "/api/{formation_id}",
                "description": "The same API under the formation-prefixed path MUXI's SDKs use",
                "variables": {"formation_id": {"default": formation, "enum": [formation]}},
            },
        ],
        "paths": paths,
        "components": {"schemas": top.get("$defs", {}), "securitySchemes": SECURITY_SCHEMES},
    }


def _models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = [ErrorBody, OpenAIErrorBody]
    for op in OPERATIONS:
        answers = [a for v in op.ok.values() for a in (v if isinstance(v, tuple) else (v,))]
        for m in (op.body, *answers):
            if isinstance(m, type) and m not in seen:
                seen.append(m)
    return seen


def _operation(op: Operation, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "security": SECURITY[op.auth],
        "parameters": _parameters(op),
        "responses": {**_answers(op, refs), **_errors(op, refs)},
    }
    if op.body is not None:
        doc["requestBody"] = _body(op.body, refs)
    return doc


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", op.path.replace("{", "by_").replace("}", "")).strip("_")
    return f"{op.method.lower()}_{words or 'root'}"


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^/?#]+$"}}
        for n in _PATH_PARAM.findall(op.path)
    ]
    extra: Sequence[Query] = (*op.params, USER) if op.auth != "none" else op.params
    for q in extra:
        params.append(
            {
                "name": q.name,
                "in": q.where,
                "required": False,
                "schema": q.schema,
                "description": q.description,
            }
        )
    return params


def _content(answer: Answer, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    if answer == SSE:
        return {SSE: {"schema": SSE_EVENT}}
    if isinstance(answer, str):
        return {
            answer: {"schema": {"type": "object"} if answer == "application/json" else {"type": "string"}}
        }
    return {"application/json": {"schema": {"$ref": refs[answer]}}}


def _answers(op: Operation, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, answers in op.ok.items():
        content: dict[str, Any] = {}
        for a in answers if isinstance(answers, tuple) else (answers,):
            if a == NO_CONTENT:
                continue
            for media, body in _content(a, refs).items():
                if media in content:  # two models under one media type: either may come
                    before = content[media]["schema"]
                    body = {"schema": {"oneOf": [*before.get("oneOf", [before]), body["schema"]]}}
                content[media] = body
        first = answers[0] if isinstance(answers, tuple) else answers
        description = first.__doc__ if status < 300 and isinstance(first, type) else None
        out[str(status)] = {"description": _first_line(description) or op.summary}
        if content:
            out[str(status)]["content"] = content
    return out


def _errors(op: Operation, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    """One response per error status, its `code` limited to the codes this route can send."""
    classes: list[type[ErrandError]] = [*op.errors, *ALWAYS]
    if op.auth != "none":
        classes += [Unauthorized, InvalidRequest]  # a key missing or wrong; a bad X-Muxi-User-Id
        if op.method not in ("GET", "HEAD"):
            classes += [Forbidden, CsrfFailed]  # a viewer key; a console change without its token
    if "{" in op.path:
        classes.append(ResourceNotFound)  # the router's 404 for a mangled path
    codes: dict[int, set[str]] = {}
    for cls in classes:
        status = status_of_class(cls)
        codes.setdefault(STATUS_OVERRIDE.get(status, status) if op.openai else status, set()).add(cls.code)
    out: dict[str, Any] = {}
    for status in sorted(codes):
        named = sorted(codes[status])
        if op.openai:  # OpenAI's shape: `code` is errand's in lower case or OpenAI's own
            out[str(status)] = {
                "description": " or ".join(named),
                "content": {"application/json": {"schema": {"$ref": refs[OpenAIErrorBody]}}},
            }
            continue
        schema = {
            "allOf": [
                {"$ref": refs[ErrorBody]},
                {"properties": {"error": {"properties": {"code": {"enum": named}}}}},
            ]
        }
        out[str(status)] = {
            "description": " or ".join(named),
            "content": {"application/json": {"schema": schema}},
        }
    return out


def _body(model: type[BaseModel], refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": refs[model]}
    required = True
    if model is TriggerBody:  # or the payload itself (a GitHub or Stripe webhook), or nothing
        schema = {
            "anyOf": [schema, {"type": "object", "description": "A raw payload, taken whole as `data`."}]
        }
        required = False
    return {
        "required": required,
        "content": {"application/json": {"schema": schema, "example": EXAMPLES[model]}},
    }


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


class OpenApi:
    """The /openapi.json endpoint of one app: the document is built once, at the first call."""

    def __init__(self, version: str) -> None:
        self._version = version
        self._body: bytes | None = None

    def document(self, formation: str) -> dict[str, Any]:
        return openapi_document(formation, self._version)

    async def serve(self, request: Request, ctx: ApiContext) -> Response:
        """GET /openapi.json."""
        if self._body is None:
            self._body = bytes(json_response(self.document(ctx.config.name)).body)
        return Response(self._body, media_type="application/json")
