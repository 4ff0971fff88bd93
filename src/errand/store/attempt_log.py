"""The attempt log's rules both backends share: its columns, rows -> models, the traceback bound,
and the outcome a lost lease is recorded with. Pure: no I/O.

A row is inserted by `claim` (outcome `running`) and closed by the write that ends the attempt,
in the same transaction: there is no extra commit per attempt. A traceback is stored whatever
the agent put in it, so it is made storable here (PostgreSQL refuses NUL in text) and cut to
MAX_TRACEBACK characters, keeping the end: the innermost frames and the raise are there.
"""

from __future__ import annotations

from typing import Any

from errand import jsonsafe
from errand.models import AttemptOutcome, AttemptRecord, ErrorInfo, Request, Status
from errand.store.rules import WORKER_DIED, Json, Values

__all__ = [
    "COLUMNS",
    "MAX_TRACEBACK",
    "RUNNING",
    "error_traceback",
    "lost_outcome",
    "stored_traceback",
    "terminal_event_data",
    "to_record",
]

MAX_TRACEBACK = 16 * 1024
"""Characters of a traceback kept (its end)."""
COLUMNS = "request_id, attempt, worker_id, started_at, ended_at, outcome, error, traceback"
"""What `list_attempts` selects, in this order (rows are read by position)."""
RUNNING = AttemptOutcome.RUNNING.value
_CUT = "… (traceback cut to its last {} characters)\n"


def stored_traceback(text: str | None) -> str | None:
    """`text` as stored: NUL and lone surrogates replaced, at most MAX_TRACEBACK characters
    (the end kept, the cut marked at the start)."""
    if text is None:
        return None
    if len(text) > MAX_TRACEBACK:
        mark = _CUT.format(MAX_TRACEBACK)
        text = mark + text[-(MAX_TRACEBACK - len(mark)) :]
    return jsonsafe.clean_text(text, MAX_TRACEBACK)


def error_traceback(error: ErrorInfo | None) -> str | None:
    """The stored form of an error's traceback (None without an error or a traceback)."""
    return None if error is None else stored_traceback(error.traceback)


def lost_outcome(cause: str) -> AttemptOutcome:
    """How an attempt taken back from a lost worker ended: its worker seen dead, or its lease out."""
    return AttemptOutcome.WORKER_LOST if cause == WORKER_DIED else AttemptOutcome.LEASE_LOST


def _decoded(value: Any) -> Any:
    return value


def to_record(row: Values, json: Json = _decoded) -> AttemptRecord:
    """A row selected with COLUMNS."""
    error = ErrorInfo.from_dict(json(row[6]))
    if error is not None and row[7] is not None:
        error = ErrorInfo(error.type, error.message, error.retryable, traceback=row[7])
    return AttemptRecord(
        request_id=row[0],
        attempt=row[1],
        worker_id=row[2],
        started_at=row[3],
        ended_at=row[4],
        outcome=AttemptOutcome(row[5]),
        error=error,
    )


def terminal_event_data(req: Request, doc: dict[str, Any]) -> dict[str, Any]:
    """The data of a terminal event: the status document (`to_document`, no traceback), and for
    `failed` the number of the attempt that failed (as a `retry` event names its attempt)."""
    return {**doc, "attempt": req.attempt} if req.status is Status.FAILED else doc
