"""errand.backoff: the one delay formula -- exponential, capped, then jittered around the capped value."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from errand.backoff import Backoff

STEADY = Backoff(initial=1.0, maximum=60.0, factor=2.0, jitter=0.0)


def rng() -> random.Random:
    return random.Random(2024)


@pytest.mark.parametrize(("failure", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0)])
def test_the_wait_after_failure_n_is_initial_times_factor_to_the_n_minus_1_capped(
    failure: int, expected: float
) -> None:
    assert STEADY.base(failure) == expected
    assert STEADY.delay(failure, rng()) == expected  # no jitter: exactly the formula


def test_the_factor_is_the_growth_per_failure() -> None:
    thrice = Backoff(initial=0.5, maximum=1000.0, factor=3.0, jitter=0.0)
    assert [thrice.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 13.5]
    flat = Backoff(initial=5.0, maximum=1000.0, factor=1.0, jitter=0.0)
    assert {flat.delay(n) for n in range(1, 50)} == {5.0}


def test_failure_numbers_below_one_wait_the_initial_delay() -> None:
    assert STEADY.base(0) == 1.0 and STEADY.base(-3) == 1.0


@pytest.mark.parametrize("failure", [64, 65, 1_000, 10**9, 2**63])
def test_huge_failure_numbers_stay_at_the_cap_without_overflow(failure: int) -> None:
    assert STEADY.base(failure) == 60.0
    jittered = Backoff(initial=1.0, maximum=3600.0, factor=2.0, jitter=0.25)
    assert 2700.0 <= jittered.delay(failure, rng()) <= 4500.0
    uncapped = Backoff(initial=1.0, maximum=math.inf, factor=2.0, jitter=0.0)
    assert math.isfinite(uncapped.base(failure))  # the exponent is bounded, so no float overflow


def test_jitter_stays_within_its_bounds_and_spreads() -> None:
    backoff = Backoff(initial=10.0, maximum=1000.0, factor=2.0, jitter=0.25)
    r = rng()
    delays = [backoff.delay(1, r) for _ in range(2000)]
    assert min(delays) >= 7.5 and max(delays) <= 12.5
    assert max(delays) - min(delays) > 4.0  # spread over the range, not a constant
    assert 9.5 < sum(delays) / len(delays) < 10.5  # centred on the un-jittered value


def test_the_cap_is_applied_before_the_jitter() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, factor=2.0, jitter=0.5)
    r = rng()
    capped = [backoff.delay(30, r) for _ in range(500)]
    assert min(capped) >= 5.0 and max(capped) <= 15.0
    assert any(d > 10.0 for d in capped) and any(d < 10.0 for d in capped)  # spread around the cap


def test_full_jitter_bounds_and_the_same_seed_gives_the_same_waits() -> None:
    full = Backoff(initial=4.0, maximum=100.0, factor=2.0, jitter=1.0)
    r = rng()
    assert all(0.0 <= full.delay(1, r) <= 8.0 for _ in range(500))
    assert [full.delay(3, rng()) for _ in range(3)] == [full.delay(3, rng())] * 3


def test_without_an_rng_the_module_random_is_used() -> None:
    backoff = Backoff(initial=2.0, maximum=100.0, factor=2.0, jitter=0.25)
    assert all(1.5 <= backoff.delay(1) <= 2.5 for _ in range(200))


def test_delays_yields_the_waits_after_failures_one_two_three_endlessly() -> None:
    assert list(itertools.islice(STEADY.delays(), 8)) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    jittered = Backoff(initial=1.0, maximum=60.0, factor=2.0, jitter=0.25)
    waits = list(itertools.islice(jittered.delays(rng()), 10))
    r = rng()
    assert waits == [jittered.delay(n, r) for n in range(1, 11)]  # the same draws, in order
    assert all(0.75 * STEADY.base(n) <= w <= 1.25 * STEADY.base(n) for n, w in enumerate(waits, 1))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"initial": -1.0, "maximum": 10.0}, "delays must be >= 0"),
        ({"initial": 1.0, "maximum": -10.0}, "delays must be >= 0"),
        ({"initial": 1.0, "maximum": 10.0, "factor": 0.5}, "factor must be >= 1"),
        ({"initial": 1.0, "maximum": 10.0, "jitter": -0.1}, r"jitter must be within \[0, 1\]"),
        ({"initial": 1.0, "maximum": 10.0, "jitter": 1.5}, r"jitter must be within \[0, 1\]"),
    ],
)
def test_nonsense_parameters_are_refused_at_construction(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**arguments)


def test_a_backoff_is_a_frozen_value() -> None:
    assert Backoff(1.0, 60.0) == Backoff(initial=1.0, maximum=60.0, factor=2.0, jitter=0.25)
    with pytest.raises(AttributeError):
        STEADY.initial = 5.0  # type: ignore[misc]
