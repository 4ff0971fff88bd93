"""api/responses_body.py: POST /v1/responses bodies, checked; input as chat messages."""

from __future__ import annotations

from typing import Any

import pytest

from errand.api.response_objects import EXTRAS
from errand.api.responses_body import validate_responses
from errand.errors import InvalidRequest


def field_of(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidRequest) as bad:
        validate_responses(data)
    details = bad.value.details
    assert isinstance(details, list)
    return str(details[0]["field"])


def test_a_string_input_is_one_user_message() -> None:
    body = validate_responses({"model": "echo", "input": "hi"})
    assert body.messages() == [{"role": "user", "content": "hi"}] and body.message() == "hi"
    assert body.background is False and body.stream is False


def test_a_message_list_runs_its_last_user_message_and_keeps_the_rest() -> None:
    body = validate_responses(
        {
            "model": "echo",
            "input": [
                {"role": "system", "content": "be kind"},
                {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                },
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "sec"}, {"type": "input_text", "text": "ond"}],
                },
            ],
            "temperature": 0.2,
            "store": True,
        }
    )
    assert body.message() == "second"
    assert [m["role"] for m in body.messages()] == ["system", "user", "assistant", "user"]


def test_input_without_a_user_message_is_refused() -> None:
    body = validate_responses({"model": "echo", "input": [{"role": "assistant", "content": "x"}]})
    with pytest.raises(InvalidRequest) as bad:
        body.message()
    assert bad.value.details == {"field": "input"}
    with pytest.raises(InvalidRequest):
        validate_responses({"model": "echo", "input": "   "}).message()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"input": "x"}, "model"),
        ({"model": "", "input": "x"}, "model"),
        ({"model": "echo"}, "input"),
        ({"model": "echo", "input": "x", "modle": 1}, "modle"),
        ({"model": "echo", "input": "x", "tools": [{"type": "web_search"}]}, "tools"),
        ({"model": "echo", "input": "x", "metadata": {EXTRAS: "mine"}}, "metadata"),
        ({"model": "echo", "input": "x", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
        ({"model": "echo", "input": "x", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"model": "echo", "input": "x", "metadata": {"k": 1}}, "metadata.k"),
        ({"model": "echo", "input": "x", "background": "yes"}, "background"),
    ],
)
def test_bad_bodies_name_their_field(data: dict[str, Any], field: str) -> None:
    assert field_of(data) == field


def test_non_text_input_parts_are_refused() -> None:
    image = {"role": "user", "content": [{"type": "input_image", "image_url": "https://x"}]}
    assert field_of({"model": "echo", "input": [image]}).startswith("input")
