"""SigninLimiter: failed console sign-ins per address in a sliding minute."""

from __future__ import annotations

from errand.api.signin_limit import MAX_ADDRESSES, WINDOW_S, SigninLimiter


def test_the_limit_is_per_address_and_slides_with_the_minute() -> None:
    limiter = SigninLimiter(3)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("a", t) == 0.0
        limiter.failed("a", t)
    assert limiter.retry_after("a", 30.0) == WINDOW_S - 30.0  # the oldest failure ages out at 60
    assert limiter.retry_after("b", 30.0) == 0.0
    assert limiter.retry_after("a", 60.0) == 0.0  # one fewer in the window
    limiter.failed("a", 60.0)
    assert limiter.retry_after("a", 61.0) == 9.0


def test_addresses_are_bounded_forgetting_the_least_recent() -> None:
    limiter = SigninLimiter(1)
    for i in range(MAX_ADDRESSES + 5):
        limiter.failed(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert limiter.retry_after("10.0.0.0", 1.0) == 0.0  # forgotten
    last = MAX_ADDRESSES + 4
    assert limiter.retry_after(f"10.0.{last // 256}.{last % 256}", 1.0) == 59.0
