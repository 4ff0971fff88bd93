"""The line protocol between an `isolation: process` agent and its child: one JSON object a line.

Parent -> child (the child's stdin, kept open: its end tells the child the parent is gone):
`start` (handler, message, context: with the answers so far, `inputs` and `input_state`).
Child -> parent (a private copy of the child's stdout; the agent's own prints go to stderr):
`event` (progress, content and other reports, in order), then one `result`, `error` or `ask`
(`ctx.ask` past the answers the start gave it: the question and the state to keep).

An exception crosses as its `__cause__` chain of pickles beside its type, message and traceback,
so the parent classifies it (transient or permanent) exactly as an inline agent's. The child runs
the formation's own code, which the server already imports and trusts: process isolation is a
fault boundary (blocking, crashes, kills), not a sandbox.
"""

from __future__ import annotations

import base64
import itertools
import pickle
import traceback
from typing import Any

import orjson

from errand.errors import PermanentError

__all__ = ["MAX_LINE_BYTES", "decode", "encode", "error_message", "exception_from"]

MAX_LINE_BYTES = 64 * 1024 * 1024
"""The largest message the parent reads (a result, an event): past it the attempt fails."""

_CHAIN_DEPTH = 5
"""How many links of an exception's `__cause__` chain cross (as engine/retry.py reads)."""


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line. Raises TypeError for a value JSON cannot hold."""
    return orjson.dumps(message) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line as a message. Raises ValueError for anything but a JSON object with a `t`."""
    value = orjson.loads(line)
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise ValueError("not a protocol message")
    return value


def _pickled(exc: BaseException) -> str | None:
    try:
        return base64.b64encode(pickle.dumps(exc)).decode("ascii")
    except Exception:
        return None  # holds something unpicklable (a lock, a socket): the parent rebuilds it


def _unpickled(data: Any) -> BaseException | None:
    if not isinstance(data, str):
        return None
    try:
        value = pickle.loads(base64.b64decode(data))
    except Exception:
        return None  # e.g. a constructor that wants keyword arguments pickle does not keep
    return value if isinstance(value, BaseException) else None


def error_message(exc: BaseException) -> dict[str, Any]:
    """The `error` message for what the agent raised (in the child)."""
    chain: list[str | None] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < _CHAIN_DEPTH:
        chain.append(_pickled(link))
        link = link.__cause__
    return {
        "t": "error",
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "chain": chain,
    }


def exception_from(message: dict[str, Any]) -> BaseException:
    """The agent's exception again (in the parent), its causes linked; a link that did not
    survive pickling becomes a PermanentError naming its type and message."""
    chain = message.get("chain")
    links = [_unpickled(item) for item in chain] if isinstance(chain, list) else []
    head = links[0] if links else None
    if head is None:
        head = PermanentError(f"{message.get('type')}: {message.get('message')}")
        links = [head, *links[1:]]
    for exc, cause in itertools.pairwise(links):
        if exc is None or cause is None:
            break
        exc.__cause__ = cause
    return head
