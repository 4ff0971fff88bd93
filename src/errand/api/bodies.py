"""Request bodies: read with a size cap, parse JSON, validate with pydantic, explain failures.

Validation is strict (JSON `true` is a bool, `"true"` is not; `1` is not a string) and unknown
fields are refused: a typo like `mesage` or `asnyc` must fail loudly rather than be ignored
and silently change what runs. A few MUXI body fields are known and accepted: `user_id`
(MUXI's deprecated fallback for the X-Muxi-User-Id header), `group_id` and `source_channel`
(reserved / telemetry in MUXI; ignored here). Every failure is an InvalidRequest naming the
field, with a `details` list of `{"field", "message", "type"}`.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.requests import Request

from errand.api.errors import MalformedBody
from errand.errors import InvalidRequest, PayloadTooLarge
from errand.models import Mode

REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Client-chosen request ids: 1-128 url-safe characters, starting with a letter or digit."""


class ChatBody(BaseModel):
    """POST /v1/chat. `async` and `use_async` are seed-compatible synonyms of `mode`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    message: str
    agent_id: str | None = Field(default=None, min_length=1, max_length=128)
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, Any] | None = None
    webhook_url: str | None = Field(default=None, max_length=2048)
    threshold_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    stream: bool = False
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)
    mode: Literal["auto", "sync", "async"] | None = None
    async_: bool | None = Field(default=None, alias="async")
    use_async: bool | None = None
    # MUXI fields: user_id is the deprecated header fallback; the other two are ignored.
    user_id: str | None = None
    group_id: str | None = None
    source_channel: str | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> ChatBody:
        self.explicit_mode()  # raises on conflicting mode / async / use_async
        return self

    def explicit_mode(self) -> Mode | None:
        """The mode the request asked for, or None; ValueError if its three spellings disagree."""
        said: dict[str, Mode] = {}
        if self.mode is not None:
            said["mode"] = Mode(self.mode)
        for name, flag in (("async", self.async_), ("use_async", self.use_async)):
            if flag is not None:
                said[name] = Mode.ASYNC if flag else Mode.SYNC
        if len(set(said.values())) > 1:
            shown = ", ".join(f"{k}={_show(k, v)}" for k, v in said.items())
            raise ValueError(f"mode, async and use_async disagree ({shown}); send one of them")
        return next(iter(said.values()), None)


def _show(name: str, mode: Mode) -> str:
    if name == "mode":
        return f'"{mode.value}"'
    return "true" if mode is Mode.ASYNC else "false"


_CHAT_FIELDS = sorted({f.alias or name for name, f in ChatBody.model_fields.items()})


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


def parse_object(raw: bytes) -> dict[str, Any]:
    """JSON object from bytes: not JSON -> 400 (malformed); JSON but not an object -> 422."""
    if not raw.strip():
        raise MalformedBody("request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {_json_type(data)}")
    return data


def fingerprint(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact): same request, same fingerprint."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def validate_chat(data: dict[str, Any]) -> ChatBody:
    try:
        return ChatBody.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc, _CHAT_FIELDS) from None


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
