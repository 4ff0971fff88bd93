"""The SQL of the console's store methods, in both dialects, beside the rules that read their rows.

Sessions: one row per sign-in keyed by the SHA-256 of the cookie value; a row past its
`expires_at` is dead to every reader at once, and `purge_console` deletes it later. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from errand.console_models import (
    ConsoleSession,
    CountRow,
    DeliveryHealth,
    DeliveryPage,
    Match,
    MinuteRow,
    RunningRow,
    WorkerRow,
)
from errand.models import Delivery, Status
from errand.store.listing import MAX_PAGE, Mark, decode_cursor, encode_cursor, list_query
from errand.store.rules import (
    ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS,
    REQUEST_COLUMNS,
    Json,
    Values,
    summary_columns,
    to_request,
)

SESSION_COLUMNS = "id_hash, key_id, role, csrf_token, created_at, expires_at"

SQLITE_INSERT_SESSION = f"INSERT INTO console_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
PG_INSERT_SESSION = f"INSERT INTO console_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"

SQLITE_GET_SESSION = f"SELECT {SESSION_COLUMNS} FROM console_sessions WHERE id_hash = ? AND expires_at > ?"
PG_GET_SESSION = (
    f"SELECT {SESSION_COLUMNS} FROM console_sessions WHERE id_hash = $1 AND expires_at > $2::float8"
)

SQLITE_DELETE_SESSION = "DELETE FROM console_sessions WHERE id_hash = ?"
PG_DELETE_SESSION = "DELETE FROM console_sessions WHERE id_hash = $1"

SQLITE_PURGE_SESSIONS = "DELETE FROM console_sessions WHERE expires_at <= ?"
PG_PURGE_SESSIONS = "DELETE FROM console_sessions WHERE expires_at <= $1::float8"


def session_values(s: ConsoleSession) -> tuple[str, str, str, str, float, float]:
    return (s.id_hash, s.key_id, s.role, s.csrf_token, s.created_at, s.expires_at)


def to_session(row: Values | None) -> ConsoleSession | None:
    """A session row (sqlite3 row or asyncpg Record, read by position), or None."""
    if row is None:
        return None
    return ConsoleSession(
        id_hash=str(row[0]),
        key_id=str(row[1]),
        role=str(row[2]),
        csrf_token=str(row[3]),
        created_at=float(row[4]),
        expires_at=float(row[5]),
    )


# -- the overview (every statement bounded: see each) -----------------------------------------------
RUNNING_LIMIT = 50
COUNTS = "SELECT status, agent, user_id, SUM(n), COUNT(*) FROM request_counts GROUP BY status, agent, user_id"
"""The live requests per group: the count rows since the last fold (request_counts, 0013)."""
SQLITE_FOLD_COUNTS = (
    "INSERT INTO request_counts (status, agent, user_id, n) SELECT status, agent, user_id, SUM(n) "
    "FROM request_counts WHERE id <= :last GROUP BY status, agent, user_id HAVING SUM(n) <> 0",
    "DELETE FROM request_counts WHERE id <= :last",
)
PG_FOLD_COUNTS = (
    "WITH moved AS (DELETE FROM request_counts RETURNING status, agent, user_id, n) "
    "INSERT INTO request_counts (status, agent, user_id, n) "
    "SELECT status, agent, user_id, SUM(n) FROM moved GROUP BY status, agent, user_id HAVING SUM(n) <> 0"
)
_QUEUE = "status IN ('pending', 'processing')"  # the predicate of the partial index requests_queue
OLDEST = f"SELECT MIN(created_at) FROM requests WHERE {_QUEUE} AND status = 'pending'"
RUNNING = (
    f"SELECT {summary_columns()}, lease_owner FROM requests WHERE {_QUEUE} AND status = 'processing' "
    f"AND lease_owner IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT {RUNNING_LIMIT}"
)
"""The newest running requests: a walk of requests_queue from its end, LIMIT rows."""
BY_WORKER = (
    "SELECT lease_owner, COUNT(*), MAX(lease_expires_at) FROM requests "
    "WHERE lease_owner IS NOT NULL GROUP BY lease_owner"
)
"""Leases per worker and their latest expiry: the partial index requests_by_lease_owner holds
only the leased rows (as many as run now)."""
WORKERS = "SELECT id, host, pid, registered_at FROM workers ORDER BY id"
SQLITE_MINUTES = "SELECT minute, agent, status, bucket, n FROM agent_minutes WHERE minute >= ?"
PG_MINUTES = "SELECT minute, agent, status, bucket, n FROM agent_minutes WHERE minute >= $1::bigint"
_DELIVERY_HEALTH = (
    "SELECT (SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'retrying')), "
    "(SELECT COUNT(*) FROM deliveries WHERE state = 'failed'), "
    "(SELECT COUNT(*) FROM delivery_attempts WHERE at >= {m} AND status_code BETWEEN 200 AND 299), "
    "(SELECT COUNT(*) FROM delivery_attempts WHERE at >= {m} "
    "AND (status_code IS NULL OR status_code NOT BETWEEN 200 AND 299))"
)
SQLITE_DELIVERY_HEALTH = _DELIVERY_HEALTH.format(m="?1")
PG_DELIVERY_HEALTH = _DELIVERY_HEALTH.format(m="$1::float8")
SQLITE_PURGE_MINUTES = "DELETE FROM agent_minutes WHERE minute < ?"
PG_PURGE_MINUTES = "DELETE FROM agent_minutes WHERE minute < $1::bigint"
MINUTES_KEPT_S = 86400
"""Rollup minutes older than this are dropped by purge_console."""


def to_counts(rows: Iterable[Values]) -> tuple[tuple[CountRow, ...], int]:
    """COUNTS' groups (those at zero left out) and how many count rows were summed."""
    changes = 0
    found: list[CountRow] = []
    for row in rows:
        changes += int(row[4])
        if int(row[3]) != 0:
            found.append(CountRow(str(row[0]), row[1], row[2], int(row[3])))
    return tuple(found), changes


def to_running(rows: Iterable[Values], json: Json) -> tuple[RunningRow, ...]:
    width = len(REQUEST_COLUMNS.split(","))
    return tuple(RunningRow(to_request(row, json), row[width]) for row in rows)


def to_minutes(rows: Iterable[Values]) -> tuple[MinuteRow, ...]:
    return tuple(MinuteRow(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows)


def to_workers(rows: Iterable[Values], leases: Iterable[Values]) -> tuple[WorkerRow, ...]:
    held = {str(r[0]): (int(r[1]), None if r[2] is None else float(r[2])) for r in leases}
    out = []
    for r in rows:
        running, until = held.get(str(r[0]), (0, None))
        out.append(WorkerRow(str(r[0]), str(r[1]), int(r[2]), float(r[3]), running, until))
    return tuple(out)


def to_health(row: Values) -> DeliveryHealth:
    return DeliveryHealth(int(row[0]), int(row[1]), int(row[2] or 0), int(row[3] or 0))


# -- cross-request lists and the bulk actions' matches ------------------------------------------------
_STATE_SQL = {
    "pending": "state IN ('pending', 'retrying')",
    "delivered": "state = 'delivered'",
    "failed": "state = 'failed'",
}


def deliveries_query(state: str | None, limit: int, cursor: str | None, mark: Mark) -> tuple[str, list[Any]]:
    """Deliveries across requests, newest first by keyset on (created_at, id): the statement
    and its parameters (the index deliveries_by_state, or deliveries_by_created)."""
    where, params = ["TRUE" if state is None else _STATE_SQL[state]], []
    if cursor is not None:
        params += list(decode_cursor(cursor))
        where.append(f"(created_at, id) < ({mark(1, 'float8')}, {mark(2, 'text')})")
    params.append(max(1, min(limit, MAX_PAGE)) + 1)
    text = (
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, id DESC LIMIT {mark(len(params), 'int')}"
    )
    return text, params


def delivery_page(found: list[Delivery], limit: int) -> DeliveryPage:
    size = max(1, min(limit, MAX_PAGE))
    page = found[:size]
    more = len(found) > size
    return DeliveryPage(page, encode_cursor(page[-1].created_at, page[-1].id) if more else None)


def queued_query(
    status: Status | None, user_id: str | None, match: Match, mark: Mark
) -> tuple[str, list[Any]]:
    """The WHERE clause of the bulk cancel's match: the list's filters, limited to the queue
    (pending, processing: what a cancel can still stop)."""
    query = list_query(None, user_id, status, 1, None, mark=mark, match=match)
    return f"{query.where} AND {_QUEUE}", query.params


SQLITE_ATTEMPTS_OF = f"SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt"

LATEST_FAILED = (
    "FROM deliveries d WHERE d.state = 'failed' AND NOT EXISTS (SELECT 1 FROM deliveries e "
    "WHERE e.request_id = d.request_id AND (e.created_at, e.id) > (d.created_at, d.id))"
)
"""Requests whose latest delivery failed (a later redelivery that succeeded takes it out)."""
