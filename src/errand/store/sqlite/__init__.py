"""The SQLite backend: `SqliteStore`, the Store protocol on one database file."""

from errand.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
