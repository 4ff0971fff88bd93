"""The pure parts of answering over A2A: the value a message carries (api/a2a_answer.py), the
resume position a subscriber sends (api/a2a_stream.py), and the answers list that keeps the
message id of an A2A answer (store/input_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.types.a2a_pb2 import Message, Part, Role
from google.protobuf.struct_pb2 import Value

from errand.api.a2a_answer import answer_value
from errand.api.a2a_stream import resume_position
from errand.errors import InvalidRequest
from errand.models import Status
from errand.store import input_rules
from tests.support.models import stored_request


def _data(value: Any) -> Part:
    v = Value()
    if isinstance(value, dict):
        v.struct_value.update(value)
    else:
        v.list_value.extend(value)
    return Part(data=v)


def test_a_data_part_is_the_json_value_and_wins_over_text() -> None:
    message = Message(role=Role.ROLE_USER, parts=[Part(text="ignored"), _data({"approved": True, "n": 2})])
    assert answer_value(message) == {"approved": True, "n": 2}
    assert answer_value(Message(parts=[_data(["a", "b"])])) == ["a", "b"]


def test_text_parts_are_the_value_and_an_empty_message_is_refused() -> None:
    assert answer_value(Message(parts=[Part(text="green"), Part(text="ish")])) == "green\n\nish"
    with pytest.raises(InvalidRequest, match="text part or a data part"):
        answer_value(Message(parts=[Part(url="https://x/y")]))


@pytest.mark.parametrize(
    ("header", "position"), [("7", (7, 0)), (" 12 ", (12, 0)), ("9.1", (9, 1)), ("0", (0, 0))]
)
def test_resume_positions(header: str, position: tuple[int, int]) -> None:
    assert resume_position({"last-event-id": header}) == position


@pytest.mark.parametrize("header", ["soon", "9.", ".1", "9.1.2", "-3", "1" * 19, "9.x"])
def test_a_bad_resume_position_is_refused(header: str) -> None:
    with pytest.raises(InvalidRequest, match="errand_resume"):
        resume_position({"last-event-id": header})


def test_no_header_is_no_position() -> None:
    assert resume_position({}) is None and resume_position({"last-event-id": " "}) is None


def test_the_answers_list_keeps_each_message_id() -> None:
    req = stored_request(
        status=Status.INPUT_REQUIRED, inputs={"inp_1": "a", "inp_2": "b"}, input_messages={"m-1": "inp_1"}
    )
    assert input_rules.answers_with(req, "inp_3", {"c": 1}, "m-3") == [
        {"id": "inp_1", "value": "a", "message_id": "m-1"},
        {"id": "inp_2", "value": "b"},
        {"id": "inp_3", "value": {"c": 1}, "message_id": "m-3"},
    ]
