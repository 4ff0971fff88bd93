"""errand.api.errors: statuses by the one table (error_status.py), the one error body, and routing
errors (404, 405) rendered alike.

Called directly: `to_response` and the Starlette handlers are fed exceptions and their
responses read back. Over HTTP: tests/integration/test_api_http.py.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from errand import errors
from errand.api.errors import (
    EXCEPTION_HANDLERS,
    WWW_AUTHENTICATE,
    MalformedBody,
    error_body,
    json_response,
    status_of,
    to_response,
)
from errand.error_status import STATUS

GENERIC_500 = {"code": "INTERNAL_ERROR", "message": "Internal server error", "details": None}
"""What every 500 says: nothing about what went wrong (the log has it)."""


def body(response: Response) -> dict[str, Any]:
    assert response.media_type == "application/json"
    assert response.headers["content-type"] == "application/json"
    parsed: dict[str, Any] = orjson.loads(response.body)
    return parsed


def error_of(response: Response) -> dict[str, Any]:
    doc = body(response)
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = doc["error"]
    return error


# -- the table ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (MalformedBody("not JSON"), 400),
        (errors.MethodNotAllowed(), 405),
        (errors.InvalidRequest(), 422),
        (errors.Unauthorized(), 401),
        (errors.NotFound(), 404),
        (errors.Conflict(), 409),
        (errors.RequestExpired(), 410),
        (errors.PayloadTooLarge(), 413),
        (errors.RateLimited(), 429),
        (errors.ServiceUnavailable(), 503),
        (errors.ErrandError(), 500),
    ],
)
def test_each_listed_class_has_its_status(exc: errors.ErrandError, status: int) -> None:
    assert STATUS[type(exc)] == status
    assert status_of(exc) == status


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.IdempotencyMismatch(), 422),  # an InvalidRequest
        (errors.UnresolvableHost(), 422),
        (errors.ResourceNotFound(), 404),  # a NotFound
        (errors.StoreUnavailable(), 503),  # a ServiceUnavailable
        (errors.LeaseLost(), 500),  # never meant to leave a worker: the root's 500
        (errors.ConfigError(), 500),
    ],
)
def test_an_unlisted_class_inherits_the_status_of_its_nearest_listed_parent(
    exc: errors.ErrandError, status: int
) -> None:
    assert type(exc) not in STATUS
    assert status_of(exc) == status


def test_the_most_specific_class_wins_over_its_parent() -> None:
    class Teapot(errors.InvalidRequest):
        pass

    assert status_of(MalformedBody()) == 400 and status_of(errors.MethodNotAllowed()) == 405
    assert status_of(Teapot()) == 422  # a subclass of our own, unlisted: its parent's


# -- the body -----------------------------------------------------------------------------------


def test_an_errand_error_answers_its_code_message_and_details() -> None:
    response = to_response(errors.Conflict("Request req_1 is completed", details={"status": "completed"}))
    assert response.status_code == 409
    assert error_of(response) == {
        "code": "CONFLICT",
        "message": "Request req_1 is completed",
        "details": {"status": "completed"},
    }


def test_a_malformed_body_is_a_400_with_the_invalid_request_code() -> None:
    response = to_response(MalformedBody("request body is not valid JSON"))
    assert response.status_code == 400
    assert error_of(response)["code"] == "INVALID_REQUEST"
    assert error_of(to_response(errors.InvalidRequest("bad")))["details"] is None  # no details: null


def test_error_body_and_json_response_are_the_one_shape() -> None:
    assert error_body("X", "m") == {"error": {"code": "X", "message": "m", "details": None}}
    response = json_response({"é": [1, None]}, 201, {"Location": "/v1/requests/r"})
    assert (response.status_code, response.headers["location"]) == (201, "/v1/requests/r")
    assert body(response) == {"é": [1, None]}


def test_unauthorized_says_how_to_authenticate() -> None:
    response = to_response(errors.Unauthorized("Invalid API key"))
    assert response.status_code == 401
    assert (
        response.headers["www-authenticate"] == WWW_AUTHENTICATE == 'Bearer realm="errand", charset="UTF-8"'
    )
    assert "retry-after" not in response.headers


@pytest.mark.parametrize(
    ("exc", "retry_after"),
    [
        (errors.RateLimited(), "1"),  # the default
        (errors.ServiceUnavailable("db restarting"), "1"),
        (errors.StoreUnavailable(), "1"),
        (errors.RateLimited(details={"retry_after": 30}), "30"),
        (errors.RateLimited(details={"retry_after": 2.6}), "3"),  # whole seconds
        (errors.RateLimited(details={"retry_after": 0.2}), "1"),  # never 0
        (errors.RateLimited(details={"retry_after": -5}), "1"),  # nonsense: the default
        (errors.RateLimited(details={"retry_after": "soon"}), "1"),
    ],
)
def test_transient_answers_say_when_to_retry(exc: errors.ErrandError, retry_after: str) -> None:
    response = to_response(exc)
    assert response.headers["retry-after"] == retry_after
    assert "www-authenticate" not in response.headers


def test_a_retry_after_attribute_is_honoured_and_details_win_over_it() -> None:
    busy = errors.ServiceUnavailable()
    busy.retry_after = 7  # type: ignore[attr-defined]
    assert to_response(busy).headers["retry-after"] == "7"
    busy.details = {"retry_after": 12}
    assert to_response(busy).headers["retry-after"] == "12"


@pytest.mark.parametrize(
    "exc",
    [errors.LeaseLost("attempt 3 lost req_1"), errors.ConfigError("agents[0]: bad"), errors.ErrandError("x")],
)
def test_a_500_class_errand_error_is_logged_and_answered_generically(
    exc: errors.ErrandError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="errand.api"):
        response = to_response(exc)
    assert response.status_code == 500
    assert error_of(response) == GENERIC_500
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [exc]  # the log has the detail


def test_an_unexpected_exception_is_a_500_that_reveals_nothing(caplog: pytest.LogCaptureFixture) -> None:
    boom = RuntimeError("password=hunter2 at /srv/app.py")
    with caplog.at_level(logging.ERROR, logger="errand.api"):
        response = to_response(boom)
    assert response.status_code == 500
    assert error_of(response) == GENERIC_500
    assert b"hunter2" not in response.body
    assert any(r.exc_info and r.exc_info[1] is boom for r in caplog.records)


# -- routing errors (Starlette's HTTPException) ----------------------------------------------------


def test_an_unknown_route_is_404_resource_not_found_without_echoing_the_path() -> None:
    response = to_response(HTTPException(404, detail="/v1/secret-admin-panel not here"))
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "RESOURCE_NOT_FOUND",
        "message": "Resource not found",
        "details": None,
    }


def test_a_wrong_method_is_405_naming_the_allowed_ones() -> None:
    response = to_response(HTTPException(405, headers={"Allow": "GET, HEAD"}))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"  # kept for the client
    assert error_of(response) == {
        "code": "METHOD_NOT_ALLOWED",
        "message": "Method not allowed; allowed: GET, HEAD",
        "details": None,
    }
    assert error_of(to_response(HTTPException(405)))["message"] == "Method not allowed"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "INVALID_REQUEST"),
        (401, "UNAUTHORIZED"),
        (409, "CONFLICT"),
        (413, "PAYLOAD_TOO_LARGE"),
        (429, "RATE_LIMITED"),
        (503, "SERVICE_UNAVAILABLE"),
        (408, "REQUEST_TIMEOUT"),
        (431, "HEADERS_TOO_LARGE"),
        (502, "SERVICE_UNAVAILABLE"),  # a gateway's, as the SDK reads a bare 502
        (418, "INVALID_REQUEST"),  # unlisted 4xx
        (501, "INTERNAL_ERROR"),  # unlisted 5xx
    ],
)
def test_other_http_exceptions_keep_their_status_and_detail(status: int, code: str) -> None:
    response = to_response(HTTPException(status, detail="the detail"))
    assert response.status_code == status
    assert error_of(response) == {"code": code, "message": "the detail", "details": None}


async def test_the_starlette_handlers_answer_like_to_response(caplog: pytest.LogCaptureFixture) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})
    assert set(EXCEPTION_HANDLERS) == {errors.ErrandError, HTTPException, Exception}
    outside_the_wrapper = await EXCEPTION_HANDLERS[errors.ErrandError](
        request, errors.NotFound("Request r not found")
    )
    assert (outside_the_wrapper.status_code, error_of(outside_the_wrapper)["code"]) == (
        404,
        "REQUEST_NOT_FOUND",
    )
    route = await EXCEPTION_HANDLERS[HTTPException](request, HTTPException(405, headers={"Allow": "POST"}))
    assert (route.status_code, error_of(route)["message"]) == (405, "Method not allowed; allowed: POST")
    with caplog.at_level(logging.ERROR, logger="errand.api"):
        last_resort = await EXCEPTION_HANDLERS[Exception](request, errors.Conflict("even an errand error"))
    assert error_of(last_resort) == GENERIC_500
