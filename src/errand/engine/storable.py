"""Whether an agent's result can be recorded: JSON by the one rule (errand/jsonsafe.py), and
no larger than async.max_result_bytes. Pure.

Checked by the worker before `store.finish`: a result the store would refuse used to crash the
attempt, leave the request `processing` until its lease expired, and run the agent again --
three times, then `WorkerLost`. Refused here, it fails the request once, at once, permanently.
"""

from __future__ import annotations

from errand import jsonsafe
from errand.errors import ResultNotStorable, UnstorableValue
from errand.models import Result

__all__ = ["unstorable"]


def unstorable(result: Result, max_bytes: int) -> ResultNotStorable | None:
    """Why `result` cannot be recorded, or None when it can."""
    try:
        size = len(jsonsafe.dumps(result.to_dict(), "result"))
    except UnstorableValue as exc:
        return ResultNotStorable(f"result is not JSON-serializable: {exc.message}", details=exc.details)
    if size > max_bytes:
        return ResultNotStorable(
            f"result is too large: {size} bytes as JSON (async.max_result_bytes is {max_bytes})",
            details={"size": size, "limit": max_bytes},
        )
    return None
