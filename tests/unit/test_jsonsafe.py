"""errand/jsonsafe.py: the one rule of what errand stores as JSON, and its messages."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import pytest

from errand.errors import InvalidRequest, UnstorableValue
from errand.jsonsafe import MAX_DEPTH, check, clean_text, dumps


def nested(levels: int) -> Any:
    return functools.reduce(lambda inner, _: {"a": inner}, range(levels), 0)


@pytest.mark.parametrize(
    ("value", "field", "why"),
    [
        ({"x": object()}, "result.x", "has type object"),
        ({"tags": {1, 2}}, "result.tags", "has type set"),
        ({"t": ["ok", "lone \ud800"]}, "result.t[1]", "lone UTF-16 surrogate (\\ud800)"),
        ({"t": "a\x00b"}, "result.t", "NUL"),
        ({"a\x00": 1}, "result['a\\x00']", "NUL"),
        ({1: "one"}, "result", "has a key of type int"),
        ({"n": 2**64}, "result.n", "64-bit"),
        ({"f": float("inf")}, "result.f", "no JSON form"),
    ],
)
def test_refusals_name_the_place(value: Any, field: str, why: str) -> None:
    with pytest.raises(UnstorableValue) as caught:
        check(value, "result")
    assert isinstance(caught.value, InvalidRequest)  # a 422 where the API raises it
    assert caught.value.details == {"field": field}
    assert caught.value.message.startswith(f"{field}: ") and why in caught.value.message


def test_depth_limit() -> None:
    check(nested(MAX_DEPTH), "metadata")
    with pytest.raises(UnstorableValue, match=f"^metadata.a: nested deeper than {MAX_DEPTH} levels$"):
        check(nested(MAX_DEPTH + 1), "metadata")
    with pytest.raises(UnstorableValue):
        check(nested(1000), "metadata")  # no RecursionError: the walk is iterative


def test_depth_names_the_top_field_and_the_limit() -> None:
    """The body is level 1 with the limit it is given; the refusal names the field it set."""
    check({"a": {"b": 1}}, "", max_depth=2)
    with pytest.raises(UnstorableValue) as caught:
        check({"ok": 1, "a": {"b": [1]}}, "", max_depth=2)
    assert caught.value.message == "a: nested deeper than 2 levels"
    assert caught.value.details == {"field": "a", "max_depth": 2}
    with pytest.raises(UnstorableValue) as caught:
        check({"text": "x", "tree": nested(100)}, "result")
    assert caught.value.details == {"field": "result.tree", "max_depth": MAX_DEPTH}


def test_storable_values_serialize_as_orjson_does() -> None:
    value = {"text": "héllo ✓", "n": [1, -(2**63), 2**64 - 1, 1.5, True, None], "t": ("a",), "e": {}}
    assert dumps(value, "result") == orjson.dumps(value)


def test_clean_text_makes_any_message_storable() -> None:
    assert clean_text("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert len(clean_text("x" * 100_000)) == 8192
    check(clean_text("\udfff" * 10 + "\x00"), "error")
