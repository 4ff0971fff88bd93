"""How a purge is cut into chunks, on both backends: when it is done, how long it rests between
chunks, and (SQLite) how big the next chunk is."""

from __future__ import annotations

PURGE_CHUNK = 200
"""Requests tombstoned (and dropped) per purge transaction, so no transaction is long (PostgreSQL
always; SQLite's first chunk, then sized by `next_purge_chunk`)."""


def purge_finished(tombstoned: int, dropped: int, keys: int = 0, chunk: int = PURGE_CHUNK) -> bool:
    """A purge chunk of `chunk` rows that did less than that of each left nothing for another."""
    return max(tombstoned, dropped, keys) < chunk


def next_purge_chunk(chunk: int, seconds: float) -> int:
    """The size of the next purge chunk, from the last one's size and how long it held the
    writer: halved above PURGE_CHUNK_SECONDS, doubled below it, within PURGE_CHUNK_MIN..MAX.
    A fixed count costs ever more with the table (each row brings its events, deliveries,
    attempts and every index of `requests`), so the chunk is bounded by time instead: a submit
    arriving during a chunk waits for ~5-10 ms at most, whatever the size of the database."""
    low, high = PURGE_CHUNK_SECONDS
    if seconds > high:
        return max(PURGE_CHUNK_MIN, chunk // 2)
    if seconds < low:
        return min(PURGE_CHUNK_MAX, chunk * 2)
    return chunk


PURGE_CHUNK_SECONDS = (0.005, 0.010)
"""The time a purge chunk should hold the SQLite writer (seconds, from..to)."""
PURGE_CHUNK_MIN = 10
PURGE_CHUNK_MAX = 2000


def purge_rest(chunk_seconds: float) -> float:
    """Seconds to rest after a purge chunk that took `chunk_seconds`: as long again (at most
    PURGE_REST_MAX), so a long purge holds the writer (SQLite) or its row locks (PostgreSQL)
    at most half the time and submits meanwhile wait for one chunk at most."""
    return min(chunk_seconds, PURGE_REST_MAX)


PURGE_REST_MAX = 0.5
