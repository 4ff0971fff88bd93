"""store.rollup: the duration buckets of the overview's rollup and percentiles read from them."""

from __future__ import annotations

import pytest

from errand.store.rollup import BUCKETS, bucket_upper, percentile, window_start


def test_bounds_are_geometric_from_10_ms() -> None:
    assert bucket_upper(-1) == 0.0
    assert bucket_upper(0) == pytest.approx(0.01)
    assert bucket_upper(10) == pytest.approx(0.01 * 1.25**10)
    assert bucket_upper(BUCKETS) == bucket_upper(BUCKETS - 1)  # the overflow bucket


def test_percentiles_are_bucket_bounds_never_below_the_value() -> None:
    assert percentile([], 0.5) is None
    counts = [(3, 50), (10, 45), (20, 5)]
    assert percentile(counts, 0.5) == bucket_upper(3)
    assert percentile(counts, 0.95) == bucket_upper(10)
    assert percentile(counts, 0.96) == bucket_upper(20)
    assert percentile(reversed(counts), 0.5) == bucket_upper(3)  # order of the rows does not matter


def test_the_window_holds_sixty_whole_minutes_ending_with_the_current_one() -> None:
    now = 1_800_000_030.0  # 30 s into a minute
    first = window_start(now, 3600)
    assert first % 60 == 0 and first == 1_800_000_000 - 3540
