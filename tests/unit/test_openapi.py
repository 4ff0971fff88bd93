"""api/openapi.py and api/schemas.py: every route is documented, every status document fits its model.

The route list is read from the app itself (mounts flattened), so a route added to `_routes`
without its line in `openapi.OPERATIONS` fails here; the `/api/{formation_id}` copies must be
covered by the document's second server.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.routing import Mount, Route

from errand import __version__
from errand.api.app import create_app
from errand.api.chat import ChatBody
from errand.api.openai_errors import STATUS_OVERRIDE
from errand.api.openapi import OPERATIONS, openapi_document
from errand.api.requests import input_document
from errand.api.schemas import ErrorBody, StatusDocument
from errand.config import build_config
from errand.error_status import STATUS, status_of_class
from errand.errors import ErrandError
from errand.models import (
    Delivery,
    DeliveryAttempt,
    ErrorInfo,
    Mode,
    Progress,
    Result,
    Status,
    default_fairness_key,
    to_document,
)
from tests.support.models import stored_request
from tests.support.server import FORMATION, REPO, formation


def _app_routes(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(mount prefix, path, method) of every route of the app."""
    app = create_app(build_config(formation(tmp_path), env={}, base_dir=str(REPO)), with_workers=False)
    found: list[tuple[str, str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route):
                found.extend((prefix, route.path, m) for m in sorted(route.methods or {"GET"}) if m != "HEAD")
            else:
                raise AssertionError(f"a route of an unknown kind cannot be checked: {route!r}")

    walk(list(app.routes), "")
    return found


def test_every_route_of_the_app_is_in_the_document(tmp_path: Path) -> None:
    doc = openapi_document(FORMATION, __version__)
    servers = {s["url"].rstrip("/") for s in doc["servers"]}
    routes = _app_routes(tmp_path)
    assert len(routes) > 20
    missing = [
        f"{method} {prefix}{path}"
        for prefix, path, method in routes
        if prefix not in servers or method.lower() not in doc["paths"].get(path, {})
    ]
    assert missing == [], f"routes missing from api/openapi.py OPERATIONS: {missing}"
    # and nothing is documented that the app does not serve
    served = {(path, method) for prefix, path, method in routes if prefix == ""}
    documented = {(op.path, op.method) for op in OPERATIONS}
    assert documented == served


def test_the_prefixed_server_is_only_this_formation() -> None:
    doc = openapi_document(FORMATION, "9.9")
    prefixed = doc["servers"][1]
    assert prefixed["url"] == "/api/{formation_id}"
    assert prefixed["variables"]["formation_id"] == {"default": FORMATION, "enum": [FORMATION]}
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == "9.9"
    # the unversioned paths are not served under the prefix, and say so
    for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs"):
        assert doc["paths"][path]["servers"] == [{"url": "/"}]
    assert "servers" not in doc["paths"]["/v1/chat"]


def test_error_responses_come_from_the_error_table() -> None:
    doc = openapi_document(FORMATION, __version__)
    get = doc["paths"]["/v1/requests/{request_id}"]["get"]["responses"]
    assert set(get) >= {"200", "401", "404", "405", "410", "422", "503"}
    codes_404 = get["404"]["content"]["application/json"]["schema"]["allOf"][1]
    assert codes_404["properties"]["error"]["properties"]["code"]["enum"] == [
        "REQUEST_NOT_FOUND",
        "RESOURCE_NOT_FOUND",
    ]
    responses = doc["paths"]["/v1/responses"]["post"]["responses"]
    assert "422" not in responses and "400" in responses  # OpenAI's status for a bad parameter
    assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIErrorBody")
    chat = doc["paths"]["/v1/chat"]["post"]["responses"]
    assert {"200", "202", "400", "413", "422"} <= set(chat)
    # every declared error's status is the table's, never a number typed in the declaration
    for op in OPERATIONS:
        responses = doc["paths"][op.path][op.method.lower()]["responses"]
        for cls in op.errors:
            status = status_of_class(cls)
            if op.openai:  # OpenAI's routes: 422 is OpenAI's 400
                status = STATUS_OVERRIDE.get(status, status)
            assert str(status) in responses, (op.path, cls)
    assert all(status_of_class(cls) == status for cls, status in STATUS.items() if cls is not ErrandError)


def test_a_status_with_two_answers_documents_both() -> None:
    """A bulk action answers its dry run's count or its run's outcome, both 200: either may come."""
    doc = openapi_document(FORMATION, __version__)
    for path, run in (
        ("/v1/admin/requests/cancel", "BulkCancelled"),
        ("/v1/admin/deliveries/redeliver", "BulkRedelivered"),
    ):
        schema = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert [ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]] == [run, "BulkMatch"]


def test_security_schemes_and_headers() -> None:
    doc = openapi_document(FORMATION, __version__)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ClientKey"] == {**schemes["ClientKey"], "type": "apiKey", "in": "header"}
    assert schemes["ClientKey"]["name"] == "X-Muxi-Client-Key"
    assert schemes["AdminKey"]["name"] == "X-Muxi-Admin-Key"
    assert schemes["Bearer"]["scheme"] == "bearer"
    redeliver = doc["paths"]["/v1/requests/{request_id}/redeliver"]["post"]
    assert redeliver["security"] == [{"AdminKey": []}, {"Bearer": []}, {"SessionCookie": []}]
    assert schemes["SessionCookie"] == {**schemes["SessionCookie"], "in": "cookie", "name": "errand_session"}
    assert doc["paths"]["/health"]["get"]["security"] == []
    names = {p["name"] for p in doc["paths"]["/v1/chat"]["post"]["parameters"]}
    assert {"X-Muxi-User-Id", "X-Muxi-Idempotency-Key"} <= names


def test_request_bodies_are_the_validating_models_with_valid_examples() -> None:
    doc = openapi_document(FORMATION, __version__)
    body = doc["paths"]["/v1/chat"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ChatBody"}
    chat_schema = doc["components"]["schemas"]["ChatBody"]
    assert set(chat_schema["properties"]) == {f.alias or n for n, f in ChatBody.model_fields.items()}
    assert chat_schema["additionalProperties"] is False
    ChatBody.model_validate(body["example"])  # the example is a body the server accepts


DELIVERY = Delivery(
    "dlv_1",
    "req_1",
    "https://h.example/x",
    "retrying",
    [DeliveryAttempt("dlv_1", 1, 4.0, 500, None, 7)],
    9.0,
    3.0,
)


@pytest.mark.parametrize("status", list(Status))
def test_every_status_document_validates_against_the_model(status: Status) -> None:
    shapes = itertools.product(
        [None, "https://h.example/x"],  # webhook
        [False, True],  # with_delivery
        [None, DELIVERY],
        [None, "s1"],  # session
        [None, "issue"],  # trigger
        [False, True],  # stored id
    )
    for webhook, with_delivery, delivery, session, trigger, stored in shapes:
        req = stored_request(
            status=status,
            webhook_url=webhook,
            session_id=session,
            trigger=trigger,
            kind="trigger" if trigger else "chat",
            progress=Progress(50, "half", 1, 2),
            result=Result("done", "echo", {"usage": {"tokens": 3}}),
            error=ErrorInfo("ValueError", "bad", False),
            started_at=None if status is Status.PENDING else 2.0,
            completed_at=3.0 if status.is_terminal else None,
        )
        doc = to_document(req, with_delivery=with_delivery, delivery=delivery, stored_id=stored)
        StatusDocument.model_validate(doc)


@pytest.mark.parametrize("mode", [Mode.SYNC, Mode.ASYNC])
def test_the_input_of_one_request_validates_and_hides_the_default_fairness_key(mode: Mode) -> None:
    named = stored_request(mode=mode, metadata={"k": [1, {"x": None}]}, session_id="s", fairness_key="team")
    default = stored_request(mode=mode)
    default = dataclasses.replace(default, fairness_key=default_fairness_key(default.owner, default.user_id))
    for req, key in ((named, "team"), (default, None)):
        doc = {**to_document(req, with_delivery=True), "input": input_document(req)}
        StatusDocument.model_validate(doc)
        assert doc["input"]["fairness_key"] == key and doc["input"]["message"] == req.message
        assert doc["input"]["mode"] == mode.value
    with pytest.raises(ValidationError):
        StatusDocument.model_validate({**doc, "input": {**doc["input"], "webhook_url": "https://h.example"}})


def test_a_field_the_model_does_not_know_fails_validation() -> None:
    doc = to_document(stored_request())
    with pytest.raises(ValidationError):
        StatusDocument.model_validate({**doc, "surprise": 1})
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"error": {"code": "X", "message": "m", "details": None, "more": 1}})
