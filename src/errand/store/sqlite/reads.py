"""The reads of the SQLite backend: one plain function per query, run on a reader connection.

They also run inside writes (a write reads the row it checks), on the writer's connection.
"""

from __future__ import annotations

import sqlite3

from errand.console_models import Match
from errand.models import TERMINAL, Delivery, Event, Page, QueueStats, Request, Status
from errand.store import listing, rules
from errand.store.processes import WorkerProcess
from errand.store.queue import QUEUE_SQL, SQLITE_FOLD, to_queue_stats
from errand.store.rules import REQUEST_COLUMNS, sql_in
from errand.store.sqlite.rows import loads

TERMINAL_IN = sql_in(sorted(TERMINAL))
_SUMMARY = rules.summary_columns()
_CHUNK = 500  # bound parameters per IN (...) list


def find(conn: sqlite3.Connection, request_id: str) -> Request | None:
    row = conn.execute(f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
    return None if row is None else rules.to_request(row, loads)


def get(conn: sqlite3.Connection, request_id: str, cutoff: float | None = None) -> Request:
    """The live request: NotFound if unknown, RequestExpired if a tombstone (or outlived)."""
    return rules.live(request_id, find(conn, request_id), cutoff)


def seq_of(conn: sqlite3.Connection, request_id: str) -> int:
    row = conn.execute("SELECT seq FROM requests WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        raise rules.not_found(request_id)
    return int(row[0])


def list_requests(
    conn: sqlite3.Connection,
    owner: str | None,
    user_id: str | None,
    status: Status | None,
    limit: int,
    cursor: str | None,
    cutoff: float | None = None,
    match: Match | None = None,
) -> Page:
    query = listing.list_query(owner, user_id, status, limit, cursor, mark=_mark, cutoff=cutoff, match=match)
    found = conn.execute(
        f"SELECT {_SUMMARY} FROM requests WHERE {query.where} ORDER BY {query.order} LIMIT ?",
        (*query.params, query.fetch),
    ).fetchall()
    return query.page([rules.to_request(row, loads) for row in found])


def _mark(_n: int, _type: str) -> str:
    return "?"


def events_since(conn: sqlite3.Connection, request_id: str, after_seq: int, limit: int) -> list[Event]:
    found = conn.execute(
        f"SELECT {rules.EVENT_COLUMNS} FROM events WHERE request_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (request_id, after_seq, limit),
    ).fetchall()
    return [rules.to_event(row, loads) for row in found]


def queue_stats(conn: sqlite3.Connection) -> tuple[QueueStats, int]:
    return to_queue_stats(conn.execute(QUEUE_SQL).fetchall())


def fold_queue_counts(conn: sqlite3.Connection) -> None:
    """Fold queue_counts into one row per group (a write: run it on the writer)."""
    last = conn.execute("SELECT MAX(id) FROM queue_counts").fetchone()[0]
    if last is not None:
        for statement in SQLITE_FOLD:
            conn.execute(statement, {"last": last})


def duration_history(conn: sqlite3.Connection, agent: str, limit: int) -> list[float]:
    found = conn.execute(
        "SELECT completed_at - started_at FROM requests WHERE agent = ? AND status = 'completed' "
        "AND started_at IS NOT NULL ORDER BY completed_at DESC LIMIT ?",
        (agent, limit),
    ).fetchall()
    return [float(row[0]) for row in found]


def ended_among_sql(n: int) -> str:
    """Which of `n` requests named by id have ended: `+status` keeps SQLite (no statistics) on
    the primary key; with `status IN` it walked every ended row of `requests_by_status`."""
    return f"SELECT id FROM requests WHERE id IN ({', '.join('?' * n)}) AND +status IN {TERMINAL_IN}"


def cancelled_among(conn: sqlite3.Connection, request_ids: list[str]) -> set[str]:
    done: set[str] = set()
    for start in range(0, len(request_ids), _CHUNK):
        chunk = request_ids[start : start + _CHUNK]
        found = conn.execute(ended_among_sql(len(chunk)), chunk).fetchall()
        done.update(row[0] for row in found)
    return done


def list_deliveries(conn: sqlite3.Connection, request_id: str) -> list[Delivery]:
    return deliveries(conn, "request_id = ?", request_id)


def deliveries(conn: sqlite3.Connection, where: str, param: str) -> list[Delivery]:
    found = conn.execute(
        f"SELECT {rules.DELIVERY_COLUMNS} FROM deliveries WHERE {where} ORDER BY created_at, rowid", (param,)
    ).fetchall()
    result: list[Delivery] = []
    for row in found:
        attempts = conn.execute(
            f"SELECT {rules.ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt",
            (row[0],),
        ).fetchall()
        result.append(rules.to_delivery(row, [rules.to_attempt(a) for a in attempts]))
    return result


def workers_on(conn: sqlite3.Connection, node: str) -> list[tuple[str, WorkerProcess]]:
    """The registered workers of one node (the only ones this process can check)."""
    query = "SELECT id, host, node, pid, started FROM workers WHERE node = ?"
    found = conn.execute(query, (node,)).fetchall()
    return [(row[0], WorkerProcess(host=row[1], node=row[2], pid=row[3], started=row[4])) for row in found]
