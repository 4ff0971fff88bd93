"""open_store(url): the only place a URL chooses a backend (backends are imported lazily)."""

from __future__ import annotations

from typing import Any

from errand.clock import Clock, SystemClock
from errand.errors import ConfigError
from errand.store.base import Store

__all__ = ["Store", "open_store"]


async def open_store(url: str, *, clock: Clock | None = None, **options: Any) -> Store:
    """Open (and migrate, unless migrate=False) the store at `url`.

    sqlite:///relative.db, sqlite:////absolute.db -> SQLite; postgresql://... -> PostgreSQL.
    """
    clock = clock or SystemClock()
    if url.startswith("sqlite:"):
        from errand.store.sqlite import SqliteStore

        return await SqliteStore.open(url, clock=clock, **options)
    if url.startswith(("postgresql:", "postgres:")):
        from errand.store.postgres import PostgresStore

        return await PostgresStore.open(url, clock=clock, **options)
    raise ConfigError(
        f"storage.url: unsupported scheme in {url.split(':', 1)[0]!r}; "
        "use sqlite:///path.db or postgresql://..."
    )
