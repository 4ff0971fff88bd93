"""Opening and upkeep of SqliteStore: the checks, folder and connections before the file opens,
the purge run as short writer transactions, the dead-worker sweep and the queue gauges."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from errand.clock import Clock
from errand.errors import ConfigError, StoreUnavailable
from errand.models import QueueStats, Request
from errand.store import processes, rules
from errand.store.queue import FOLD_AT
from errand.store.sqlite import reads, writes
from errand.store.sqlite.connections import SYNCHRONOUS, Readers, Writer, connect
from errand.store.sqlite.fileguard import FileGuard
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


def connections(path: str, synchronous: str, readers: int, busy_timeout: float) -> tuple[Writer, Readers]:
    """The writer thread's connection and the reader pool of one file (not started yet)."""
    guard = FileGuard(path)
    writer = Writer(
        lambda: connect(path, synchronous=synchronous, writer=True, busy_timeout=busy_timeout),
        guard=guard,
        busy_timeout=busy_timeout,
        synchronous=synchronous,
    )
    pool = Readers(
        lambda: connect(path, synchronous=synchronous, writer=False, busy_timeout=busy_timeout),
        readers,
        guard,
    )
    return writer, pool


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


async def requeue_dead(
    readers: Readers, writer: Writer, now: float, after: Callable[[list[Request]], None]
) -> list[Request]:
    """The leases of workers of this node whose process is gone, taken back: one read, and a
    write only when some died."""
    node = processes.this_process().node
    workers = await readers.run(lambda c: reads.workers_on(c, node))
    dead = [worker_id for worker_id, process in workers if processes.dead(process)]
    if not dead:
        return []
    return await writer.submit(lambda c: writes.requeue_dead(c, dead, now), after)


async def queue_stats(readers: Readers, writer: Writer) -> QueueStats:
    """The counters summed; folded into one row per key once they have grown (store/queue.py)."""
    stats, changes = await readers.run(reads.queue_stats)
    if changes > FOLD_AT:
        await writer.submit(reads.fold_queue_counts, relaxed=True)
    return stats
