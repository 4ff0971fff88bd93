"""The SQLite schema: packaged migrations, each applied once and recorded by version in
`schema_migrations` (as PostgreSQL records them by name).

Recording each version, not only the highest (`PRAGMA user_version`), matters when branches
merge: a migration numbered below one already applied is still found missing and applied.
Versions up to `user_version` above the highest recorded one count as applied: a file migrated
before this table existed (or by an errand that set only `user_version`) is not migrated twice.
`user_version` is still kept at the highest applied version for such errands.
"""

from __future__ import annotations

import functools
import importlib.resources
import sqlite3
from collections.abc import Sequence

Migration = tuple[int, str, str]
"""(version, name, sql) of one packaged migration."""

TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"""
RECORD = "INSERT OR IGNORE INTO schema_migrations (version, name) VALUES (?, ?)"


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """(version, name, sql) of every packaged migration, in order."""
    folder = importlib.resources.files("errand.store").joinpath("migrations").joinpath("sqlite")
    found: list[Migration] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            name = entry.name.removesuffix(".sql")
            found.append((int(name.split("_", 1)[0]), name, entry.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def migrate(conn: sqlite3.Connection, packaged: Sequence[Migration] | None = None) -> list[str]:
    """Apply every packaged migration not yet applied, in order, recording each; returns their
    names. Runs inside the writer's BEGIN IMMEDIATE, so two processes migrating at once
    serialize and the second finds nothing to do."""
    packaged = migrations() if packaged is None else packaged
    conn.execute(TABLE)
    done = applied(conn, packaged)
    names: list[str] = []
    for version, name, sql in packaged:
        if version not in done:
            for statement in _statements(sql):
                conn.execute(statement)
            names.append(name)
        conn.execute(RECORD, (version, name))  # those adopted from user_version too, from now on
    highest = max((version for version, _, _ in packaged), default=0)
    if highest > schema_version(conn):
        conn.execute(f"PRAGMA user_version = {int(highest)}")
    return names


def applied(conn: sqlite3.Connection, packaged: Sequence[Migration] | None = None) -> set[int]:
    """The versions applied: those recorded, and those up to user_version above the highest
    recorded (applied before they were recorded, see the module docstring)."""
    packaged = migrations() if packaged is None else packaged
    recorded: set[int] = set()
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone():
        recorded = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}
    floor, ceiling = max(recorded, default=0), schema_version(conn)
    return recorded | {version for version, _, _ in packaged if floor < version <= ceiling}


def pending(conn: sqlite3.Connection) -> list[str]:
    """The names of the packaged migrations not applied yet (`schema_current` asks this)."""
    done = applied(conn)
    return [name for version, name, _ in migrations() if version not in done]


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT our transaction)."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            code = "\n".join(line for line in buffer.splitlines() if not line.strip().startswith("--"))
            if code.strip(" \n;"):
                statements.append(buffer.strip())
            buffer = ""
    return statements
