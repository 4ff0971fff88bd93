"""errand.conversation.messages_of: what `ctx.messages` holds for a chat request, a Response, and
metadata that is not what a Response writes (a client's own keys, a malformed entry)."""

from __future__ import annotations

from typing import Any

from errand.api.response_objects import KIND, Turn, chain_of
from errand.conversation import RESPONSES_KEY, messages_of
from errand.models import Request, Result, Status
from tests.support.models import stored_request


def test_a_chat_request_is_its_one_user_message() -> None:
    assert messages_of({"ticket": "T-1"}, "hello") == [{"role": "user", "content": "hello"}]


def test_a_response_is_its_instructions_history_and_input_in_order() -> None:
    turn = Turn(
        "m",
        True,
        "Be terse.",
        input=[{"role": "user", "content": "b"}],
        history=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "A"}],
    )
    assert messages_of(turn.to_metadata({"k": "v"}), "b") == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "b"},
    ]


def test_malformed_entries_are_left_out_and_an_empty_input_falls_back_to_the_message() -> None:
    bad: dict[str, Any] = {"input": [{"role": "tool", "content": "x"}, {"role": "user", "content": 3}, "y"]}
    assert messages_of(
        {RESPONSES_KEY: {**bad, "input": [*bad["input"], {"role": "user", "content": "ok"}]}}, "ok"
    ) == [{"role": "user", "content": "ok"}]
    assert messages_of({RESPONSES_KEY: {"input": []}}, "m") == [{"role": "user", "content": "m"}]
    assert messages_of({RESPONSES_KEY: "not a dict"}, "m") == [{"role": "user", "content": "m"}]


def _response(status: Status, result: Result | None) -> Request:
    meta = Turn("m", True, "Only this turn.", input=[{"role": "user", "content": "q"}]).to_metadata({})
    return stored_request(kind=KIND, status=status, metadata=meta, result=result)


def test_a_chain_carries_the_answer_of_a_completed_turn_only() -> None:
    done = _response(Status.COMPLETED, Result("the answer", "m"))
    assert chain_of(done) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "the answer"},
    ]
    assert chain_of(_response(Status.PENDING, None)) == [{"role": "user", "content": "q"}]
