"""Request bodies: read with a size cap, parse a JSON object, turn pydantic failures into 422s.

What POST /v1/chat and POST /v1/triggers/{name} share; each body model sits beside its route
(ChatBody in chat.py, TriggerBody in triggers.py). Not JSON is a 400 (MalformedBody); JSON that
fails validation is a 422 InvalidRequest naming the first bad field, with a `details` list of
`{"field", "message", "type"}` (an unknown field suggests the known one it looks like).

Every parsed body also passes `jsonsafe.check` (the body is level 1, the limit
`server.max_json_depth`): what errand cannot store is a 422 naming the field, in the same words
as an agent's unstorable result. One rule at the door, so both backends answer alike:
PostgreSQL cannot store NUL in text or jsonb, orjson cannot encode surrogates or nest past 254
levels (the idempotency fingerprint, the stored metadata), and SQLite would have taken what
PostgreSQL refuses.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from errand import jsonsafe
from errand.api.errors import MalformedBody
from errand.errors import InvalidRequest, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes (early, from Content-Length, when sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise MalformedBody("Content-Length is not a number")
        if len(declared) > 15 or int(declared) > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes", details={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes", details={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def parse_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    """JSON object from bytes: not JSON -> 400 (malformed); JSON but not an object, or not
    storable (see errand.jsonsafe.check) -> 422."""
    if not raw.strip():
        raise MalformedBody("request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _explain_refusal(raw, max_depth)
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    return _storable_object(data, max_depth)


def _storable_object(data: Any, max_depth: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {_json_type(data)}")
    jsonsafe.check(data, "", max_depth)
    return data


def _explain_refusal(raw: bytes, max_depth: int) -> None:
    """orjson refuses lone surrogates and nesting past 1024 levels, both valid JSON: the lenient
    stdlib parser reads them, so the answer is the 422 naming the field that a shallower or
    cleaner body would get. Returns when the body really is malformed (then a 400)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise jsonsafe.too_deep(_too_deep_for_stdlib(raw), max_depth) from None
    except ValueError:
        return
    _storable_object(data, max_depth)


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


def _skip_space(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # `*` always matches


def _too_deep_for_stdlib(raw: bytes) -> str:
    """The field (a top-level key, as jsonsafe spells it) whose value the recursive stdlib
    parser could not read, found by reading the object one member at a time; "" when none is
    found (not an object, say)."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        at = _skip_space(text, 0)
        while text[at] in "{,":
            key, at = json.decoder.scanstring(text, _skip_space(text, at + 1) + 1)  # type: ignore[attr-defined]
            at = _skip_space(text, _skip_space(text, at) + 1)  # past the ':'
            try:
                at = _skip_space(text, _DECODER.raw_decode(text, at)[1])
            except RecursionError:
                return jsonsafe.key_path("", key)
    except (ValueError, IndexError):
        pass
    return ""


def invalid_from(exc: ValidationError, known: list[str]) -> InvalidRequest:
    """A pydantic error -> InvalidRequest whose message names the first bad field."""
    details = [_detail(err, known) for err in exc.errors(include_url=False, include_input=False)]
    details.sort(key=lambda d: d["type"] != "extra_forbidden")  # a typo explains the rest
    first = details[0]
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    return InvalidRequest(message, details=details)


def _detail(err: Any, known: list[str]) -> dict[str, str]:
    field = ".".join(str(p) for p in err["loc"])
    kind = str(err["type"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = "unknown field"
        close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean '{close[0]}'?)"
    elif kind == "missing":
        message = "field required"
    elif kind == "string_pattern_mismatch" and field == "request_id":
        message = "must be 1-128 characters (letters, digits, _ . : -), starting with a letter or digit"
    elif not field and kind == "value_error":
        field = "mode"
    return {"field": field, "message": message, "type": kind}


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


M = TypeVar("M", bound=BaseModel)


async def read_model(request: Request, model: type[M], max_bytes: int, max_depth: int) -> M:
    """The body as `model`: read with the size cap, parsed as a storable object, validated (the
    first bad field named, as for /v1/chat)."""
    data = parse_object(await read_body(request, max_bytes), max_depth)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc, list(model.model_fields)) from None
