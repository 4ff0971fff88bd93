"""The pure rules of questions and answers: `RunContext.ask` (the resumption model),
`store.input_rules` (idempotent answers, expiry), the transition table and the document."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from errand.agents.base import InputRequested, RunContext
from errand.errors import InputAlreadyAnswered, InputNotOutstanding, InvalidRequest
from errand.models import INPUT_TIMEOUT, InputAsk, Mode, Request, Status, can_transition, to_document
from errand.store import input_rules
from errand.store.input_rules import check_value


def ctx(inputs: dict[str, Any] | None = None) -> RunContext:
    return RunContext("req_1", "u1", None, {}, 1, "a", inputs=inputs or {}, now=lambda: 100.0)


async def test_ask_raises_the_question_with_its_expiry_and_kept_state() -> None:
    with pytest.raises(InputRequested) as raised:
        await ctx().ask("Name?", schema={"type": "string"}, timeout=30, on_timeout="cancel", state={"k": 1})
    ask = raised.value.ask
    assert (ask.prompt, ask.schema, ask.expires_at, ask.on_timeout, ask.asked_at) == (
        "Name?",
        {"type": "string"},
        130.0,
        "cancel",
        100.0,
    )
    assert ask.id.startswith("inp_") and raised.value.state == {"k": 1}
    assert not isinstance(raised.value, Exception)  # `except Exception` in a handler cannot eat it


async def test_answers_come_back_in_ask_order_then_the_next_ask_raises() -> None:
    c = ctx({"inp_a": "first", "inp_b": 2})
    assert await c.ask("one?") == "first"
    assert await c.ask("two?") == 2
    with pytest.raises(InputRequested):
        await c.ask("three?")


async def test_resumed_answer_consumes_every_answer_so_far() -> None:
    c = ctx({"inp_a": "first", "inp_b": "second"})
    assert c.resumed_answer() == "second"
    with pytest.raises(InputRequested):
        await c.ask("next?")


async def test_a_bad_schema_or_on_timeout_fails_at_the_ask() -> None:
    with pytest.raises(jsonschema.SchemaError):
        await ctx().ask("?", schema={"type": "no-such-type"})
    with pytest.raises(ValueError, match="on_timeout"):
        await ctx().ask("?", on_timeout="later")


def request(status: Status, ask: InputAsk | None = None, inputs: dict[str, Any] | None = None) -> Request:
    return Request(
        "req_1", "o", "u", "chat", None, "m", None, {}, None, None, Mode.ASYNC, status, 1, 0, 3,
        None, None, None, 0.0, None, None, 0.0, None, 3, input_request=ask, inputs=inputs or {},
    )  # fmt: skip


def test_needs_answer_is_idempotent_per_input_id() -> None:
    ask = InputAsk("inp_1", "?")
    waiting = request(Status.INPUT_REQUIRED, ask)
    assert input_rules.needs_answer(waiting, "inp_1", {"a": 1})
    answered = request(Status.PENDING, None, {"inp_1": {"a": 1, "b": [1.0]}})
    assert not input_rules.needs_answer(answered, "inp_1", {"b": [1.0], "a": 1})  # key order aside
    with pytest.raises(InputAlreadyAnswered):
        input_rules.needs_answer(answered, "inp_1", {"a": 2})
    with pytest.raises(InputNotOutstanding):
        input_rules.needs_answer(waiting, "inp_2", 1)
    with pytest.raises(InputNotOutstanding):
        input_rules.needs_answer(request(Status.CANCELLED, ask), "inp_1", 1)


def test_expiry_fails_or_cancels_with_input_timeout() -> None:
    assert input_rules.expiry_end(InputAsk("i", "?", on_timeout="fail"))[0] is Status.FAILED
    status, error = input_rules.expiry_end(InputAsk("i", "?", on_timeout="cancel"))
    assert status is Status.CANCELLED and error.type == INPUT_TIMEOUT and not error.retryable
    with pytest.raises(InvalidRequest):
        input_rules.check_ask(InputAsk("i", "?", on_timeout="never"))


def test_the_transition_table_and_the_document() -> None:
    assert can_transition(Status.PROCESSING, Status.INPUT_REQUIRED)
    assert not can_transition(Status.PENDING, Status.INPUT_REQUIRED)  # only a running attempt asks
    for target in (Status.PENDING, Status.CANCELLED, Status.FAILED):
        assert can_transition(Status.INPUT_REQUIRED, target)
    assert not can_transition(Status.INPUT_REQUIRED, Status.PROCESSING)  # answered first
    assert not Status.INPUT_REQUIRED.is_terminal
    ask = InputAsk("inp_1", "Name?", {"type": "string"}, 5.0, "cancel", 1.0)
    doc = to_document(request(Status.INPUT_REQUIRED, ask))
    assert doc["input_request"] == {
        "id": "inp_1",
        "prompt": "Name?",
        "schema": {"type": "string"},
        "expires_at": 5.0,
    }
    assert "input_request" not in to_document(request(Status.PENDING, ask))


def test_check_value_names_the_failing_path() -> None:
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "integer"}}}}
    check_value(schema, {"items": [1, 2]})
    with pytest.raises(InvalidRequest) as refused:
        check_value(schema, {"items": [1, "x"]})
    assert refused.value.details[0]["path"] == "$.items[1]"
    assert str(refused.value).startswith("value.items[1]:")
