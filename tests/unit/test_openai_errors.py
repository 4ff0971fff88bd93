"""api/openai_errors.py: errand's error answers rewritten in OpenAI's error shape."""

from __future__ import annotations

import orjson

from errand.api.errors import to_response
from errand.api.openai_errors import openai_error, to_openai
from errand.errors import Conflict, InvalidRequest, NotFound, QueueFull, StoreUnavailable, Unauthorized


def body(exc: Exception) -> tuple[int, dict[str, object], dict[str, str]]:
    answer = to_openai(to_response(exc))
    return answer.status_code, orjson.loads(bytes(answer.body))["error"], dict(answer.headers)


def test_statuses_come_from_errands_table_with_422_as_openais_400() -> None:
    assert body(InvalidRequest("bad", details={"field": "model"}))[0] == 400
    assert body(Unauthorized("who"))[0] == 401
    assert body(NotFound("gone"))[0] == 404
    assert body(Conflict("ended"))[0] == 409
    assert body(QueueFull("full", retry_after=3))[0] == 429
    assert body(StoreUnavailable("down"))[0] == 503


def test_the_shape_names_type_param_and_code() -> None:
    _, error, _ = body(InvalidRequest("m", details={"field": "model", "openai_code": "model_not_found"}))
    assert error == {
        "message": "m",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    _, error, headers = body(Unauthorized("who"))
    assert error["type"] == "authentication_error" and error["code"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer")
    _, error, headers = body(QueueFull("full", retry_after=3))
    assert error["type"] == "rate_limit_error" and headers["retry-after"] == "3"


def test_a_pydantic_detail_list_names_its_first_field_and_a_500_says_nothing() -> None:
    error = openai_error(400, {"code": "INVALID_REQUEST", "message": "x", "details": [{"field": "input"}]})
    assert error["param"] == "input"
    status, error, _ = body(RuntimeError("secret internals"))
    assert status == 500 and error["type"] == "server_error" and "secret" not in str(error["message"])


def test_success_answers_pass_unchanged() -> None:
    from errand.api.errors import json_response

    ok = json_response({"id": "resp_1"})
    assert to_openai(ok) is ok
