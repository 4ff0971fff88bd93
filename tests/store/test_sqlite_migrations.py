"""SQLite migrations recorded by version: a migration merged later with a lower number than the
file's newest is still applied, and a file versioned only by `user_version` is not migrated twice."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from errand.clock import ManualClock
from errand.store.sqlite import SqliteStore, schema


def numbered(*versions: int) -> list[schema.Migration]:
    """Tiny migrations: version n creates table t<n>."""
    return [(n, f"{n:04d}_t{n}", f"-- version {n}\nCREATE TABLE t{n} (x INTEGER);") for n in versions]


def run(path: Path, packaged: list[schema.Migration]) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        return schema.migrate(conn, packaged)


def state(path: Path) -> tuple[set[int], set[str], int]:
    """(recorded versions, tables, user_version) of the file."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        recorded = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return recorded, tables, schema.schema_version(conn)


def test_a_lower_numbered_migration_merged_later_is_applied(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    assert run(db, numbered(1, 3, 4)) == ["0001_t1", "0003_t3", "0004_t4"]
    assert state(db) == ({1, 3, 4}, {"schema_migrations", "t1", "t3", "t4"}, 4)
    assert run(db, numbered(1, 2, 3, 4)) == ["0002_t2"]
    assert state(db) == ({1, 2, 3, 4}, {"schema_migrations", "t1", "t2", "t3", "t4"}, 4)
    assert run(db, numbered(1, 2, 3, 4)) == []


def test_a_file_versioned_only_by_user_version_counts_as_migrated_up_to_it(tmp_path: Path) -> None:
    db = tmp_path / "legacy.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # as errand migrated before the table
        conn.executescript(
            "CREATE TABLE t1 (x INTEGER); CREATE TABLE t3 (x INTEGER); PRAGMA user_version = 3;"
        )
    assert run(db, numbered(1, 3, 4)) == ["0004_t4"]
    assert state(db) == ({1, 3, 4}, {"schema_migrations", "t1", "t3", "t4"}, 4)


async def test_the_store_applies_a_packaged_migration_missing_below_the_newest(
    sqlite_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    packaged = schema.migrations()
    without = [m for m in packaged if m[1] != "0004_settings"]
    assert without[-1][0] > 4  # the missing one is below the file's newest
    run(tmp_path / "errand.db", without)
    store = await SqliteStore.open(sqlite_url, clock=clock, migrate=False)
    try:
        assert await store.schema_current() is False
        assert await store.migrate() == ["0004_settings"]
        assert await store.schema_current() is True
        assert await store.get_or_create_setting("s", "v1") == "v1"
        assert await store.migrate() == []
    finally:
        await store.close()
    recorded, _, version = state(tmp_path / "errand.db")
    assert recorded == {v for v, _, _ in packaged} and version == packaged[-1][0]
