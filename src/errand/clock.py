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


_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
"""63 url-safe characters in byte order: a number written in them (fixed width) sorts as it does."""


def new_request_id(at: float | None = None) -> str:
    """`req_` + 22 url-safe characters: 8 that sort as the creation time in ms (`at`, default
    now), then 14 random ones (84 bits, unguessable). Ids of new requests thus land side by side
    at the end of every index keyed by request id (requests, events, attempts) instead of at
    random places in it, which kept submit and claim costs flat as the backlog grows."""
    ms = int((time.time() if at is None else at) * 1000)
    stamp = ""
    for _ in range(8):  # 63**8 ms: until the year 9800
        ms, digit = divmod(ms, len(_DIGITS))
        stamp = _DIGITS[digit] + stamp
    return "req_" + stamp + secrets.token_urlsafe(11)[:14]


def new_id(prefix: str) -> str:
    """A random id with a readable prefix (deliveries, events, workers)."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"
