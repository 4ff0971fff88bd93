"""api/response_objects.py: the Response object of a stored request, ids, statuses, usage."""

from __future__ import annotations

import pytest

from errand.api.response_objects import (
    EXTRAS,
    KIND,
    STATUS,
    Turn,
    client_metadata,
    error_of,
    message_id,
    request_id_of,
    response_id,
    response_object,
    usage_of,
)
from errand.api.schemas import ResponseObject
from errand.models import ErrorInfo, Result, Status
from tests.support.models import stored_request

TURN = Turn("echo", True, "be brief", None, [{"role": "user", "content": "hi"}])


def response(**changes: object) -> dict[str, object]:
    req = stored_request(kind=KIND, metadata=TURN.to_metadata({"team": "a"}), **changes)
    return response_object(req)


def test_ids_map_both_ways_and_only_response_ids_are_read() -> None:
    assert response_id("req_abc") == "resp_abc"
    assert request_id_of("resp_abc") == "req_abc"
    assert request_id_of(response_id("req_XyZ-9_")) == "req_XyZ-9_"
    assert message_id("req_abc") == "msg_abc"
    for text in ("req_abc", "resp_", "abc", ""):
        assert request_id_of(text) is None


def test_every_errand_status_has_an_openai_one() -> None:
    assert set(STATUS) == set(Status)
    assert STATUS[Status.PENDING] == "queued" and STATUS[Status.PROCESSING] == "in_progress"


def test_a_completed_request_is_a_completed_response_with_its_text() -> None:
    doc = response(result=Result("the answer", "echo", {"usage": {"input_tokens": 2, "output_tokens": 5}}))
    ResponseObject.model_validate(doc)
    assert doc["id"] == "resp_1" and doc["object"] == "response" and doc["status"] == "completed"
    assert doc["model"] == "echo" and doc["background"] is True and doc["instructions"] == "be brief"
    assert doc["metadata"] == {"team": "a"}  # errand's own key is not shown
    assert doc["output_text"] == "the answer" and doc["error"] is None
    assert doc["output"] == [
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "the answer", "annotations": [], "logprobs": []}],
        }
    ]
    assert doc["usage"] == {
        "input_tokens": 2,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 7,
    }


@pytest.mark.parametrize(
    ("status", "shown"),
    [(Status.PENDING, "queued"), (Status.PROCESSING, "in_progress"), (Status.CANCELLED, "cancelled")],
)
def test_an_unfinished_or_cancelled_response_has_no_output(status: Status, shown: str) -> None:
    doc = response(status=status, completed_at=None)
    ResponseObject.model_validate(doc)
    assert doc["status"] == shown and doc["output"] == [] and doc["output_text"] == ""
    assert doc["error"] is None and doc["usage"] is None


def test_a_failed_request_shows_its_error_as_openai_does() -> None:
    doc = response(status=Status.FAILED, error=ErrorInfo("PermanentError", "no"))
    assert doc["status"] == "failed" and doc["error"] == {
        "code": "server_error",
        "message": "PermanentError: no",
    }
    assert error_of({"type": "X", "message": "m"}) == {"code": "server_error", "message": "X: m"}
    assert error_of(None)["code"] == "server_error"


def test_usage_in_both_naming_schemes_and_none_when_absent_or_odd() -> None:
    chat = usage_of({"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5})
    assert chat is not None and (chat["input_tokens"], chat["output_tokens"], chat["total_tokens"]) == (
        4,
        1,
        5,
    )
    for odd in (None, "many", {"steps": 3}, {"input_tokens": "4", "output_tokens": 1}):
        assert usage_of(odd) is None


def test_turn_round_trips_through_metadata_and_a_plain_request_still_renders() -> None:
    req = stored_request(kind=KIND, metadata=TURN.to_metadata({"a": "b"}))
    assert Turn.of(req) == TURN
    assert client_metadata(req) == {"a": "b"} and EXTRAS in req.metadata
    plain = response_object(stored_request())
    assert plain["model"] == "echo" and plain["metadata"] == {}
