"""Time and ids: the seams tests control instead of sleeping."""

from __future__ import annotations

import secrets
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in epoch seconds (stored in the database) and a monotonic clock."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when a test says so (lease expiry, TTL purge, backoff)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


def new_request_id() -> str:
    """`req_` + 22 url-safe characters (132 random bits)."""
    return "req_" + secrets.token_urlsafe(17)[:22]


def new_id(prefix: str) -> str:
    """A random id with a readable prefix (deliveries, events, workers)."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"
