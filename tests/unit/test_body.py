"""errand.api.body: reading a body under a size cap, parsing a JSON object, and pydantic errors as 422s.

Called directly on a Starlette Request fed by hand; the same rules over HTTP are in
tests/integration/test_api_http.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.requests import Request
from starlette.types import Message

from errand.api.body import invalid_from, parse_object, read_body
from errand.api.errors import MalformedBody
from errand.errors import InvalidRequest, PayloadTooLarge, UnstorableValue

LIMIT = 100


class Feed:
    """An ASGI `receive` handing out the body in the given chunks, counting what was read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.messages: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks or [b""])
        ]
        self.reads = 0

    async def __call__(self) -> Message:
        self.reads += 1
        return self.messages.pop(0)


def request(feed: Feed, content_length: str | None = None) -> Request:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length.encode()))
    scope = {"type": "http", "method": "POST", "path": "/v1/chat", "headers": headers, "query_string": b""}
    return Request(scope, feed)


def parse(raw: bytes, max_depth: int = 64) -> dict[str, Any]:
    return parse_object(raw, max_depth)


# -- read_body ----------------------------------------------------------------------------------


async def test_the_body_is_read_whole_from_its_chunks() -> None:
    assert await read_body(request(Feed([b'{"mess', b'age": ', b'"hi"}'])), LIMIT) == b'{"message": "hi"}'
    assert await read_body(request(Feed([b"x" * LIMIT]), str(LIMIT)), LIMIT) == b"x" * LIMIT  # at the cap
    assert await read_body(request(Feed([])), LIMIT) == b""


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    feed = Feed([b"x" * (LIMIT + 1)])
    with pytest.raises(PayloadTooLarge, match=f"request body exceeds {LIMIT} bytes") as info:
        await read_body(request(feed, str(LIMIT + 1)), LIMIT)
    assert info.value.details == {"limit": LIMIT}
    assert feed.reads == 0  # refused from the header alone


async def test_an_absurd_declared_length_is_too_large_not_a_crash() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_body(request(Feed([b"{}"]), "9" * 4000), LIMIT)


async def test_a_stream_over_the_cap_is_refused_whatever_was_declared() -> None:
    chunks = [b"x" * 60, b"x" * 60, b"x" * 60]
    for declared in (None, "10"):  # none, or a lie
        feed = Feed(chunks)
        with pytest.raises(PayloadTooLarge) as info:
            await read_body(request(feed, declared), LIMIT)
        assert info.value.details == {"limit": LIMIT}
        assert feed.reads == 2  # stopped at the chunk that crossed the cap


@pytest.mark.parametrize("declared", ["12a", "-1", "1.5", " 5", "0x10", "", "１２"])
async def test_a_content_length_that_is_not_a_number_is_malformed(declared: str) -> None:
    with pytest.raises(MalformedBody, match="Content-Length is not a number"):
        await read_body(request(Feed([b"{}"]), declared), LIMIT)


# -- parse_object -------------------------------------------------------------------------------


def test_a_json_object_is_returned_as_a_dict() -> None:
    assert parse(b'  {"message": "h\\u00e9", "n": [1, 2.5, null]}\n') == {
        "message": "hé",
        "n": [1, 2.5, None],
    }


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n\t"])
def test_an_empty_body_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedBody, match="request body is empty; send a JSON object"):
        parse(raw)


@pytest.mark.parametrize("raw", [b"{", b"{'a': 1}", b'{"a": 1,}', b"message=hi", b"\xff\xfe"])
def test_text_that_is_not_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedBody, match="request body is not valid JSON: "):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[1]", "an array"),
        (b'"hi"', "a string"),
        (b"null", "null"),
        (b"true", "a boolean"),
        (b"3.5", "a number"),
    ],
)
def test_json_that_is_not_an_object_is_invalid_not_malformed(raw: bytes, kind: str) -> None:
    with pytest.raises(InvalidRequest, match=f"request body must be a JSON object, not {kind}$") as info:
        parse(raw)
    assert not isinstance(info.value, MalformedBody)  # valid JSON: a 422, not a 400


def test_malformed_is_an_invalid_request_to_anyone_catching_that() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(b"{")
    assert info.value.code == "INVALID_REQUEST"


def deep(levels: int, key: str = "metadata") -> bytes:
    return b'{"message": "hi", "' + key.encode() + b'": ' + b"[" * levels + b"1" + b"]" * levels + b"}"


@pytest.mark.parametrize("levels", [3, 500, 1100, 5000])  # 1100, 5000: past orjson's 1024 levels
def test_too_deep_names_the_field_whichever_parser_reads_it(levels: int) -> None:
    with pytest.raises(UnstorableValue) as info:
        parse(deep(levels), max_depth=3)
    assert info.value.message == "metadata: nested deeper than 3 levels"
    assert info.value.details == {"field": "metadata", "max_depth": 3}
    assert parse(deep(2), max_depth=3)["metadata"] == [[1]]  # the body is level 1


def test_past_orjson_an_odd_key_is_spelled_as_jsonsafe_spells_it() -> None:
    with pytest.raises(UnstorableValue) as info:
        parse(deep(1100, "my key"))
    assert info.value.details == {"field": "['my key']", "max_depth": 64}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"m": {"k": ["x", "\\ud800"]}}', "m.k[1]: contains a lone UTF-16 surrogate (\\ud800), which"),
        (b'{"m": "\xed\xa0\x80"}', "m: contains a lone UTF-16 surrogate (\\ud800), which"),
        (b'{"m": {"k\\u0000": 1}}', "m['k\\x00']: contains a NUL character (\\u0000), which"),
    ],
)
def test_text_orjson_refuses_is_refused_in_the_same_words(raw: bytes, message: str) -> None:
    with pytest.raises(UnstorableValue) as info:
        parse(raw)
    assert info.value.message.startswith(message)
    assert info.value.details == {"field": message.split(": ")[0]}


# -- invalid_from -------------------------------------------------------------------------------


class Options(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    depth: int

    @field_validator("depth")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value


class Body(BaseModel):
    """A route body like ChatBody: strict, closed, a nested model, a field and a model validator."""

    model_config = ConfigDict(strict=True, extra="forbid")
    message: str
    request_id: str | None = Field(default=None, pattern=r"^[a-z0-9]+$")
    options: Options | None = None
    sync: bool = False
    later: bool = False

    @model_validator(mode="after")
    def _one_mode(self) -> Body:
        if self.sync and self.later:
            raise ValueError("sync and later disagree")
        return self


KNOWN = list(Body.model_fields)


def refusal(data: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(ValidationError) as info:
        Body.model_validate(data)
    return invalid_from(info.value, KNOWN)


def test_an_unknown_field_suggests_the_known_one_it_looks_like() -> None:
    err = refusal({"message": "hi", "mesage": "hi"})
    assert err.message == "mesage: unknown field (did you mean 'message'?)"
    assert err.details == [
        {"field": "mesage", "message": "unknown field (did you mean 'message'?)", "type": "extra_forbidden"}
    ]
    assert refusal({"message": "hi", "zzz": 1}).message == "zzz: unknown field"  # nothing close


def test_a_missing_field_is_named() -> None:
    err = refusal({})
    assert err.message == "message: field required"
    assert err.details == [{"field": "message", "message": "field required", "type": "missing"}]


def test_nested_fields_are_dotted_and_value_errors_lose_their_prefix() -> None:
    assert refusal({"message": "hi", "options": {"depth": "3"}}).message.startswith("options.depth: ")
    assert refusal({"message": "hi", "options": {"depth": 0}}).message == "options.depth: must be at least 1"


def test_a_model_level_value_error_is_the_mode_field() -> None:
    err = refusal({"message": "hi", "sync": True, "later": True})
    assert err.message == "mode: sync and later disagree"
    assert err.details[0]["field"] == "mode"


def test_a_bad_request_id_gets_the_readable_rule_not_the_regex() -> None:
    err = refusal({"message": "hi", "request_id": "Not Valid!"})
    assert err.message == (
        "request_id: must be 1-128 characters (letters, digits, _ . : -), starting with a letter or digit"
    )
    assert err.details[0]["type"] == "string_pattern_mismatch"


def test_a_typo_is_reported_first_and_the_rest_are_counted() -> None:
    err = refusal({"mesage": "hi", "options": {"depth": "x"}})
    assert err.message == "mesage: unknown field (did you mean 'message'?) (and 2 more problems)"
    assert err.details[0]["type"] == "extra_forbidden"
    assert {d["field"] for d in err.details} == {"mesage", "message", "options.depth"}
    two = refusal({"zzz": 1})
    assert two.message == "zzz: unknown field (and 1 more problem)"  # singular
