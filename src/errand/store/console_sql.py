"""The SQL of the console's store methods, in both dialects, beside the rules that read their rows.

Sessions: one row per sign-in keyed by the SHA-256 of the cookie value; a row past its
`expires_at` is dead to every reader at once, and `purge_console` deletes it later. Pure: no I/O.
"""

from __future__ import annotations

from errand.console_models import ConsoleSession
from errand.store.rules import Values

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
