"""Retry policy: classify a failed attempt as transient or permanent and pick the backoff. Pure.

Transient/permanent is a property of the exception's class (errand's `ErrandError.transient`,
timeouts, connection errors, HTTP 429/5xx), never of its message. Exceptions that wrap a
transport error (`raise APIConnectionError(...) from httpx.ConnectError(...)`, as provider SDKs
do) are judged by their explicit `__cause__` chain, except errand's own errors, which say
what they are. The worker turns a Decision into `store.retry_later` or `store.finish(failed)`.
"""

from __future__ import annotations

import errno
import random
import socket
import traceback
from dataclasses import dataclass

import httpx

from errand import jsonsafe
from errand.backoff import Backoff
from errand.config import RetryPolicy
from errand.errors import ErrandError, TransientError
from errand.models import ErrorInfo

__all__ = ["Decision", "backoff_delay", "decide", "error_info", "is_transient", "traceback_of"]

_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.EPIPE,
    }
)
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TimeoutError,  # also asyncio.TimeoutError and socket.timeout
    ConnectionError,
    socket.gaierror,  # DNS lookups fail transiently
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
_MAX_CAUSE_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a failed attempt: retry after `delay` seconds, or fail with `error`."""

    retry: bool
    error: ErrorInfo
    delay: float = 0.0


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of an error carrying a response (httpx, openai-style `status_code`)."""
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    return response.status_code if isinstance(response, httpx.Response) else None


def _is_transient_one(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return True
    return _status_code(exc) in _TRANSIENT_HTTP


def is_transient(exc: BaseException) -> bool:
    """True when another attempt may succeed. errand errors decide by their class flag."""
    for _ in range(_MAX_CAUSE_DEPTH):
        if isinstance(exc, ErrandError):
            return exc.transient
        if _is_transient_one(exc):
            return True
        if exc.__cause__ is None:
            return False
        exc = exc.__cause__
    return False


def _retry_after(exc: BaseException) -> float | None:
    """A server-requested wait: TransientError.retry_after, or a numeric Retry-After header."""
    if isinstance(exc, TransientError):
        return exc.retry_after
    response = getattr(exc, "response", None)
    if isinstance(response, httpx.Response):
        try:
            return max(0.0, float(response.headers.get("retry-after", "")))
        except ValueError:
            return None
    return None


def error_info(exc: BaseException) -> ErrorInfo:
    """The error document of a failed attempt: class name, message (else the class name), made
    storable (an agent's message may hold NUL, lone surrogates or megabytes), and the traceback
    of a raised exception, for the attempt log (the store bounds it; documents never show it)."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # an agent's exception whose __str__ raises still fails its request
        text = f"{name} (its message could not be read)"
    message = jsonsafe.clean_text(text or name)
    return ErrorInfo(
        type=jsonsafe.clean_text(name, 200),
        message=message,
        retryable=is_transient(exc),
        traceback=traceback_of(exc),
    )


def traceback_of(exc: BaseException) -> str | None:
    """Where `exc` was raised, as Python prints it (its causes and notes included); None for an
    error that was made, not raised (a timeout, a refused result)."""
    if exc.__traceback__ is None:
        return None
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # an exception whose parts cannot be printed still fails its request
        return None


def backoff_delay(failure: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Delay before the retry that follows failure number `failure` (1-based): the policy's
    values in the one backoff formula (errand/backoff.py)."""
    backoff = Backoff(policy.initial_delay, policy.max_delay, policy.backoff_factor, policy.jitter)
    return backoff.delay(failure, rng)


def decide(
    exc: BaseException,
    failures_so_far: int,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    max_attempts: int | None = None,
    no_delay: bool = False,
) -> Decision:
    """Retry or fail after an attempt raised `exc`.

    `failures_so_far` counts the earlier failed attempts of the request; `max_attempts` (the
    request's own limit, default `policy.max_attempts`) counts attempts in all. A retry waits
    `backoff_delay`, or the server's retry-after when that is longer. `no_delay` is the testing
    switch: retries become due at once (as stamina's set_testing), classification is unchanged.
    """
    info = error_info(exc)
    failure = failures_so_far + 1
    limit = policy.max_attempts if max_attempts is None else max_attempts
    if not info.retryable or failure >= limit:
        return Decision(retry=False, error=info)
    if no_delay:
        return Decision(retry=True, error=info, delay=0.0)
    delay = backoff_delay(failure, policy, rng)
    requested = _retry_after(exc)
    if requested is not None and requested > delay:
        delay = requested
    return Decision(retry=True, error=info, delay=delay)
