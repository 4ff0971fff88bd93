"""The PostgreSQL backend: `PostgresStore`, the Store protocol on a database shared by processes."""

from errand.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
