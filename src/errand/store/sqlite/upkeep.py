"""Opening and upkeep of SqliteStore: the checks and folder before the file opens, and the
purge run as short writer transactions."""

from __future__ import annotations

import functools
from pathlib import Path

from errand.clock import Clock
from errand.errors import ConfigError, StoreUnavailable
from errand.store import rules
from errand.store.sqlite.connections import SYNCHRONOUS, Writer
from errand.store.sqlite.writes import purge_chunk


def path_of(url: str) -> str:
    """sqlite:///relative/path.db -> relative/path.db; sqlite:////abs/path.db -> /abs/path.db."""
    prefix = "sqlite:///"
    path = url[len(prefix) :].split("?", 1)[0] if url.startswith(prefix) else ""
    if not path or path == ":memory:":
        raise ConfigError(f"storage.url: expected sqlite:///path.db (a file), got {url!r}")
    return path


def open_path(url: str, synchronous: str, poll_interval: float, busy_timeout: float) -> str:
    """The file of a sqlite URL with its folder made, after the options of SqliteStore.open are checked."""
    if synchronous.lower() not in SYNCHRONOUS:
        raise ConfigError(f"storage.sqlite_synchronous: expected full or normal, got {synchronous!r}")
    if poll_interval <= 0:
        raise ConfigError(f"poll_interval must be > 0, got {poll_interval!r}")
    if busy_timeout < 0:
        raise ConfigError(f"storage.sqlite_busy_timeout_seconds must be >= 0, got {busy_timeout!r}")
    path = path_of(url)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"sqlite: cannot create the folder of {path!r}: {exc}") from exc
    return path


async def purge(writer: Writer, clock: Clock, result_ttl: float, tombstone_ttl: float) -> int:
    """Tombstone expired results, drop old tombstones and keys, one short transaction per chunk."""
    total = 0
    while True:
        tombstoned, dropped = await writer.submit(
            functools.partial(
                purge_chunk,
                result_ttl=result_ttl,
                tombstone_ttl=tombstone_ttl,
                now=clock.now(),
            )
        )
        total += tombstoned + dropped
        if rules.purge_finished(tombstoned, dropped):
            return total
