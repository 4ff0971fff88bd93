"""The duration buckets of the overview's per-minute rollup (migration 0013), and percentiles
read from them. Pure: no I/O.

A finish counts its duration in bucket k when it is at most 0.01 s x 1.25^k and more than the
bound below (k = 0..63; 64 holds the rest, above ~3.6 h). A percentile is answered as its
bucket's upper bound: never below the true value, at most 25 % above it.
"""

from __future__ import annotations

from collections.abc import Iterable

FIRST_BOUND = 0.01
RATIO = 1.25
BUCKETS = 64


def bucket_upper(bucket: int) -> float:
    """The upper bound (s) of a bucket; bucket -1 is 0, the overflow bucket the last bound."""
    if bucket < 0:
        return 0.0
    return FIRST_BOUND * RATIO ** min(bucket, BUCKETS - 1)


def percentile(counts: Iterable[tuple[int, int]], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of (bucket, n) counts, as a bucket bound; None when empty."""
    ordered = sorted(counts)
    total = sum(n for _, n in ordered)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bucket, n in ordered:
        seen += n
        if seen >= rank:
            return bucket_upper(bucket)
    return bucket_upper(ordered[-1][0])  # pragma: no cover - seen reaches total


def window_start(now: float, window: float) -> int:
    """The first rollup minute inside the window ending now (the current minute is the last)."""
    return int((now - window) // 60) * 60 + 60
