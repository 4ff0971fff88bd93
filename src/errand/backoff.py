"""The one backoff formula: exponential, capped, then jittered. A leaf module.

Every retry, reconnect and supervision loop in errand waits `Backoff.delay(n)` after its n-th
failure: `min(maximum, initial * factor**(n-1))`, multiplied by a random factor in
`[1 - jitter, 1 + jitter]` so that many waiters do not wake as a herd. The cap is applied before
the jitter (the documented formula), so a capped delay still spreads out.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Backoff"]

_MAX_EXPONENT = 64  # 2**64 already exceeds any cap; larger exponents would overflow a float


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with a cap and jitter; `delay(n)` for the wait after failure n."""

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError("backoff delays must be >= 0")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be within [0, 1]")

    def base(self, failure: int) -> float:
        """The un-jittered wait after failure number `failure` (1-based)."""
        exponent = min(max(failure - 1, 0), _MAX_EXPONENT)
        return min(self.maximum, self.initial * self.factor**exponent)

    def delay(self, failure: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failure number `failure` (1-based), jittered."""
        base = self.base(failure)
        if not self.jitter:
            return base
        return base * (rng or random).uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits after failures 1, 2, 3, ... (endless): for reconnect and supervision loops."""
        failure = 1
        while True:
            yield self.delay(failure, rng)
            failure += 1
