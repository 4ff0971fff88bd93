"""The retry policy: which errors are retried, after how long, and when retries run out."""

from __future__ import annotations

import errno
import random

import httpx
import pytest

from errand.config import RetryPolicy
from errand.engine.retry import backoff_delay, decide, error_info, is_transient
from errand.errors import (
    ConfigError,
    PermanentError,
    ResourceNotFound,
    StoreUnavailable,
    TaskTimeout,
    TransientError,
)

NO_JITTER = RetryPolicy(max_attempts=10, initial_delay=1.0, max_delay=60.0, backoff_factor=2.0, jitter=0.0)


def rng() -> random.Random:
    return random.Random(1234)


@pytest.mark.parametrize(("failure", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 32.0)])
def test_delay_grows_exponentially(failure: int, expected: float) -> None:
    assert backoff_delay(failure, NO_JITTER, rng()) == expected


def test_delay_is_capped_at_max_delay() -> None:
    assert backoff_delay(7, NO_JITTER, rng()) == 60.0
    assert backoff_delay(50, NO_JITTER, rng()) == 60.0


def test_jitter_stays_within_bounds_and_varies() -> None:
    policy = RetryPolicy(initial_delay=10.0, max_delay=100.0, backoff_factor=2.0, jitter=0.25)
    r = rng()
    delays = [backoff_delay(1, policy, r) for _ in range(2000)]
    assert min(delays) >= 7.5
    assert max(delays) <= 12.5
    assert max(delays) - min(delays) > 4.0  # spread over the range, not a constant
    capped = [backoff_delay(30, policy, r) for _ in range(200)]
    assert max(capped) <= 125.0 and min(capped) >= 75.0  # jitter applies around the cap


def test_decide_uses_failure_number_for_the_delay() -> None:
    exc = TransientError("busy")
    assert decide(exc, 0, NO_JITTER, rng()).delay == 1.0
    assert decide(exc, 2, NO_JITTER, rng()).delay == 4.0


@pytest.mark.parametrize(
    "exc",
    [
        TransientError("provider busy"),
        TaskTimeout("Task exceeded timeout (1s)"),
        StoreUnavailable("db restarting"),
        TimeoutError(),
        ConnectionResetError("reset by peer"),
        ConnectionRefusedError(),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert is_transient(exc)
    decision = decide(exc, 0, NO_JITTER, rng())
    assert decision.retry
    assert decision.error.retryable
    assert decision.error.type == type(exc).__name__


@pytest.mark.parametrize(
    "exc",
    [
        PermanentError("bad input"),
        ValueError("could not parse"),
        KeyError("missing"),
        TypeError("agent returned int"),
        FileNotFoundError(errno.ENOENT, "No such file"),
        ResourceNotFound("unknown agent 'x'"),
        ConfigError("nope"),
    ],
)
def test_other_errors_fail_at_once(exc: BaseException) -> None:
    assert not is_transient(exc)
    decision = decide(exc, 0, NO_JITTER, rng())
    assert not decision.retry
    assert decision.delay == 0.0
    assert decision.error.retryable is False
    assert decision.error.message == str(exc)


def test_error_info_names_the_class_and_keeps_the_message() -> None:
    info = error_info(ValueError("the answer was not JSON"))
    assert (info.type, info.message, info.retryable) == ("ValueError", "the answer was not JSON", False)
    assert error_info(TimeoutError()).message == "TimeoutError"  # empty message -> class name


def _parse(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise KeyError(f"no number in {text!r}") from exc


def test_error_info_of_a_raised_exception_carries_its_traceback_outside_the_document() -> None:
    try:
        _parse("abc")
    except KeyError as exc:
        info = error_info(exc)
        decided = decide(exc, 0, RetryPolicy(), random.Random(1)).error
    assert info.traceback is not None
    assert info.traceback.startswith("Traceback (most recent call last):")
    assert "in _parse" in info.traceback and "ValueError: invalid literal" in info.traceback  # the cause
    assert info.traceback.rstrip().endswith("KeyError: \"no number in 'abc'\"")
    assert "traceback" not in info.to_dict()
    assert decided.traceback == info.traceback


def test_an_error_made_but_never_raised_has_no_traceback() -> None:
    assert error_info(TimeoutError("Task exceeded timeout (5s)")).traceback is None


def _status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://provider.test/v1/chat")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


@pytest.mark.parametrize(
    ("status", "transient"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
def test_http_status_decides(status: int, transient: bool) -> None:
    assert is_transient(_status_error(status)) is transient


def test_sdk_wrapper_is_judged_by_its_cause() -> None:
    class APIConnectionError(Exception):  # how provider SDKs wrap transport errors
        pass

    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as inner:
            raise APIConnectionError("Connection error.") from inner
    except APIConnectionError as wrapped:
        assert is_transient(wrapped)
    permanent = PermanentError("do not retry")
    permanent.__cause__ = TimeoutError()
    assert not is_transient(permanent)  # errand's own errors say what they are


def test_retry_after_is_honoured_when_longer() -> None:
    assert decide(TransientError("rate limited", retry_after=30.0), 0, NO_JITTER, rng()).delay == 30.0
    assert decide(TransientError("rate limited", retry_after=0.1), 0, NO_JITTER, rng()).delay == 1.0
    header = _status_error(429, {"Retry-After": "12"})
    assert decide(header, 0, NO_JITTER, rng()).delay == 12.0
    assert decide(_status_error(429, {"Retry-After": "soon"}), 0, NO_JITTER, rng()).delay == 1.0


def test_attempts_exhausted_fail_with_the_last_error() -> None:
    policy = NO_JITTER.model_copy(update={"max_attempts": 3})
    exc = TransientError("still down")
    assert decide(exc, 0, policy, rng()).retry
    assert decide(exc, 1, policy, rng()).retry
    final = decide(exc, 2, policy, rng())  # the third attempt failed: 3 in all
    assert not final.retry
    assert (final.error.type, final.error.message, final.error.retryable) == (
        "TransientError",
        "still down",
        True,
    )


def test_request_limit_overrides_the_policy() -> None:
    exc = TimeoutError("slow")
    assert not decide(exc, 0, NO_JITTER, rng(), max_attempts=1).retry
    assert decide(exc, 4, NO_JITTER, rng(), max_attempts=6).retry


def test_no_delay_switch_zeroes_delays_but_not_classification() -> None:
    slow = TransientError("busy", retry_after=99.0)
    decision = decide(slow, 3, NO_JITTER, rng(), no_delay=True)
    assert decision.retry and decision.delay == 0.0
    assert not decide(ValueError("x"), 0, NO_JITTER, rng(), no_delay=True).retry
