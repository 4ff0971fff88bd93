"""What errand stores as JSON: the one rule for request bodies and agent results, both backends.

orjson reads 1024 levels but writes only 254, PostgreSQL's jsonb refuses NUL (`\\u0000`), no
encoder takes lone surrogates, and sets or arbitrary objects have no JSON form at all. A value
that passes `check` serializes with orjson and stores identically on SQLite and PostgreSQL,
so it is refused once, up front, with the place named -- never half-way through a store write.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from errand.errors import UnstorableValue

__all__ = ["MAX_DEPTH", "MAX_TEXT", "check", "clean_text", "dumps", "key_path", "too_deep"]

MAX_DEPTH = 64
"""Containers (objects, arrays) nested deeper than this are refused: far below orjson's write
limit (254) and deep enough for any real payload. The value itself is level 1."""
MAX_TEXT = 8192
"""clean_text() keeps at most this many characters (an error message, not a payload)."""
MAX_FIELD = 400
"""A field path longer than this is cut (its start, the part a user wrote, is kept)."""
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes (and jsonb's numeric holds)
_SCALARS = (bool, int, float, str, type(None))
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def key_path(parent: str, key: str) -> str:
    """The path of `key` in the object at `parent`: `a.b`, or `a['odd key']` when the key is
    not an identifier (the repr shows a NUL or a surrogate in it as an escape)."""
    if key.isidentifier() and len(key) <= 64:
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{clean_text(repr(key), 66)}]"


def _refuse(path: str, why: str, **details: Any) -> UnstorableValue:
    """The one message form: `<field path>: <why>`, with `details.field` (None for the root
    when it has no name)."""
    field = clean_text(path, MAX_FIELD) if path else None
    return UnstorableValue(f"{field}: {why}" if field else why, details={"field": field, **details})


def too_deep(path: str, max_depth: int) -> UnstorableValue:
    """Depth names the field of the checked value that holds the nesting, not the place
    `max_depth` levels down: a path of 64 keys helps no one, the field the user set does."""
    return _refuse(path, f"nested deeper than {max_depth} levels", max_depth=max_depth)


def _check_text(text: str, path: str) -> None:
    bad = _BAD_CHAR.search(text)
    if bad is None:
        return
    if bad.group() == "\x00":
        raise _refuse(path, "contains a NUL character (\\u0000), which cannot be stored")
    code = f"\\u{ord(bad.group()):04x}"
    raise _refuse(path, f"contains a lone UTF-16 surrogate ({code}), which cannot be stored")


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


def check(value: Any, where: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise UnstorableValue naming the place (`where` + `.key` / `['key']` / `[index]`; `where`
    may be "" for a body whose fields are top-level names) unless `value` is JSON made of dict
    (str keys), list/tuple, str, int (64-bit), finite float, bool and None, at most `max_depth`
    containers deep (`value` is level 1), with no NUL or lone surrogate in any string or key.

    Iterative, so any depth is refused without RecursionError. A depth refusal names the
    field directly under `where` that holds the nesting (see too_deep)."""
    stack: list[tuple[Any, str, int, str]] = [(value, where, 1, where)]
    while stack:
        item, path, level, field = stack.pop()
        if isinstance(item, _SCALARS):
            _check_scalar(item, path)
            continue
        if not isinstance(item, dict | list | tuple):
            raise _refuse(path, f"has type {type(item).__name__}, which has no JSON form")
        if level > max_depth:
            raise too_deep(field, max_depth)
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise _refuse(path, f"has a key of type {type(key).__name__}; JSON keys are strings")
                child_path = key_path(path, key)
                _check_text(key, child_path)
                stack.append((child, child_path, level + 1, child_path if level == 1 else field))
        else:
            for i, child in enumerate(item):
                child_path = f"{path}[{i}]"
                stack.append((child, child_path, level + 1, child_path if level == 1 else field))


def dumps(value: Any, where: str) -> bytes:
    """`check` then orjson: the bytes a store would write for `value`."""
    check(value, where)
    return orjson.dumps(value)


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text` made storable (NUL and lone surrogates become U+FFFD) and cut to `limit` characters:
    for error messages, which must be recorded whatever the agent put in them."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _BAD_CHAR.sub("\ufffd", text)
