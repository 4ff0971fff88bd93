"""errand.conversation.messages_of: what `ctx.messages` holds for a chat request, a Response, and
metadata that is not what a Response writes (a client's own keys, a malformed entry)."""

from __future__ import annotations

from typing import Any

from errand.api.response_objects import KIND, Turn, chain_of
from errand.conversation import ANSWER_OF, RESPONSES_KEY, messages_of, pending_answers
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
    running = _response(Status.PROCESSING, None)
    assert chain_of(running) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", ANSWER_OF: running.id},
    ]
    assert chain_of(_response(Status.FAILED, None)) == [{"role": "user", "content": "q"}]


def test_a_pending_answer_is_filled_from_the_answers_given_or_left_out() -> None:
    history = [{"role": "user", "content": "q"}, {"role": "assistant", ANSWER_OF: "req_1"}]
    meta = Turn("m", True, input=[{"role": "user", "content": "next"}], history=history).to_metadata({})
    assert pending_answers(meta) == ["req_1"]
    assert messages_of(meta, "next", {"req_1": "A"}) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "next"},
    ]
    assert messages_of(meta, "next") == [
        {"role": "user", "content": "q"},
        {"role": "user", "content": "next"},
    ]
