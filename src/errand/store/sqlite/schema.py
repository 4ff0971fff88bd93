"""The SQLite schema: packaged migrations, applied in order and versioned with PRAGMA user_version."""

from __future__ import annotations

import functools
import importlib.resources
import sqlite3


@functools.cache
def migrations() -> tuple[tuple[int, str, str], ...]:
    """(version, name, sql) of every packaged migration, in order."""
    folder = importlib.resources.files("errand.store").joinpath("migrations").joinpath("sqlite")
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            name = entry.name.removesuffix(".sql")
            found.append((int(name.split("_", 1)[0]), name, entry.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply what user_version says is missing. Runs inside the writer's BEGIN IMMEDIATE, so two
    processes migrating at once serialize and the second finds nothing to do."""
    current = schema_version(conn)
    applied: list[str] = []
    for version, name, sql in migrations():
        if version <= current:
            continue
        for statement in _statements(sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(version)}")
        applied.append(name)
    return applied


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
