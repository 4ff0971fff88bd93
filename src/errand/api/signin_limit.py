"""Failed console sign-ins counted per client address: past the limit in a minute, 429.

Per process and in memory (a restart forgets): it slows a key-guessing client down, it is not
an account lockout. Pure but for the clock it is given.
"""

from __future__ import annotations

from collections import OrderedDict, deque

WINDOW_S = 60.0
MAX_ADDRESSES = 10_000
"""Addresses remembered at most; the least recently failing is forgotten first."""


class SigninLimiter:
    """`retry_after(addr, now)` says how long an address must wait (0: it may try now)."""

    def __init__(self, per_minute: int) -> None:
        self._limit = per_minute
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float) -> float:
        times = self._failures.get(address)
        if times is None:
            return 0.0
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        if not times:
            del self._failures[address]
            return 0.0
        if len(times) < self._limit:
            return 0.0
        return max(0.0, times[0] + WINDOW_S - now)

    def failed(self, address: str, now: float) -> None:
        times = self._failures.setdefault(address, deque())
        self._failures.move_to_end(address)
        times.append(now)
        while len(times) > self._limit:
            times.popleft()
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
