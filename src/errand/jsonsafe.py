"""What errand stores as JSON: the one rule for request bodies and agent results, both backends.

orjson reads 1024 levels but writes only 254, PostgreSQL's jsonb refuses NUL (`\\u0000`), no
encoder takes lone surrogates, and sets or arbitrary objects have no JSON form at all. A value
that passes `check` serializes with orjson and stores identically on SQLite and PostgreSQL,
so it is refused once, up front, with the place named -- never half-way through a store write.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from errand.errors import UnstorableValue

__all__ = ["MAX_DEPTH", "MAX_TEXT", "check", "clean_text", "dumps"]

MAX_DEPTH = 64
"""Containers (objects, arrays) nested deeper than this are refused: far below orjson's write
limit (254) and deep enough for any real payload."""
MAX_TEXT = 8192
"""clean_text() keeps at most this many characters (an error message, not a payload)."""
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes (and jsonb's numeric holds)
_SCALARS = (bool, int, float, str, type(None))


def _key_path(path: str, key: str) -> str:
    if key.isidentifier() and len(key) <= 64:
        return f"{path}.{key}"
    return f"{path}[{clean_text(repr(key), 66)}]"


def _refuse(path: str, why: str) -> UnstorableValue:
    return UnstorableValue(f"{path} {why}", details={"field": path})


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise _refuse(path, "contains a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(path, "contains a lone surrogate (not valid Unicode)") from None


def _check_scalar(value: Any, path: str) -> None:
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _refuse(path, "is an integer outside the 64-bit range")
    elif not math.isfinite(value):
        raise _refuse(path, f"is {value}, which has no JSON form")


def check(value: Any, where: str) -> None:
    """Raise UnstorableValue naming the place (`where` + `.key` / `[index]`) unless `value` is
    JSON made of dict (str keys), list/tuple, str, int (64-bit), finite float, bool and None,
    nested at most MAX_DEPTH containers deep, with no NUL or lone surrogate in any string."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, _SCALARS):
            _check_scalar(item, path)
            continue
        if not isinstance(item, dict | list | tuple):
            raise _refuse(path, f"is a {type(item).__name__}, which has no JSON form")
        if depth >= MAX_DEPTH:
            raise _refuse(path, f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise _refuse(path, f"has a {type(key).__name__} key; JSON keys are strings")
                child_path = _key_path(path, key)
                _check_text(key, child_path)
                stack.append((child, child_path, depth + 1))
        else:
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


def dumps(value: Any, where: str) -> bytes:
    """`check` then orjson: the bytes a store would write for `value`."""
    check(value, where)
    return orjson.dumps(value)


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text` made storable (NUL and lone surrogates become U+FFFD) and cut to `limit` characters:
    for error messages, which must be recorded whatever the agent put in them."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text
