"""The attempt log on SQLite: rows opened by claim and closed by the write ending the attempt.

Each function runs inside the caller's write transaction (the writer's), so an attempt row is
never out of step with its request row, and costs no commit of its own. Closing touches only a
row still `running`: an attempt is closed once, by whichever write ended it first.
"""

from __future__ import annotations

import sqlite3

from errand.models import AttemptOutcome, AttemptRecord, ErrorInfo, Request
from errand.store import attempt_log
from errand.store.sqlite.rows import dumps_opt, loads

_RUNNING = f"outcome = '{attempt_log.RUNNING}'"


def open_attempts(conn: sqlite3.Connection, claimed: list[Request], worker_id: str, now: float) -> None:
    """A `running` row for each claimed request's new attempt."""
    conn.executemany(
        "INSERT INTO attempts (request_id, attempt, worker_id, started_at) VALUES (?, ?, ?, ?)",
        [(r.id, r.attempt, worker_id, now) for r in claimed],
    )


def close(
    conn: sqlite3.Connection,
    request_id: str,
    attempt: int,
    outcome: AttemptOutcome,
    error: ErrorInfo | None,
    now: float,
) -> None:
    """Attempt `attempt` ended now with `outcome` (and `error`, its traceback bounded)."""
    conn.execute(
        f"UPDATE attempts SET ended_at = ?, outcome = ?, error = ?, traceback = ? "
        f"WHERE request_id = ? AND attempt = ? AND {_RUNNING}",
        (
            now,
            outcome.value,
            dumps_opt(error.to_dict() if error else None),
            attempt_log.error_traceback(error),
            request_id,
            attempt,
        ),
    )


def close_running(conn: sqlite3.Connection, request_id: str, outcome: AttemptOutcome, now: float) -> None:
    """Whatever attempt of the request is still running ended now (a cancel)."""
    conn.execute(
        f"UPDATE attempts SET ended_at = ?, outcome = ? WHERE request_id = ? AND {_RUNNING}",
        (now, outcome.value, request_id),
    )


def list_attempts(conn: sqlite3.Connection, request_id: str) -> list[AttemptRecord]:
    found = conn.execute(
        f"SELECT {attempt_log.COLUMNS} FROM attempts WHERE request_id = ? ORDER BY attempt", (request_id,)
    ).fetchall()
    return [attempt_log.to_record(row, loads) for row in found]


def forget(conn: sqlite3.Connection, ids: list[str], marks: str) -> None:
    """The attempt log of requests being tombstoned (`marks`: one `?` per id)."""
    conn.execute(f"DELETE FROM attempts WHERE request_id IN ({marks})", ids)
