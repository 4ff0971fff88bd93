"""Provider failures judged once, by class and status: transient (retried) or permanent.

The LLM agent (agents/llm.py) and the framework adapters (errand/adapters/) meet the same
`openai` and `httpx` exceptions -- LangChain's and the Agents SDK's errors subclass them,
PydanticAI keeps them as `__cause__` -- so one rule decides which another attempt can cure:
connection failures, timeouts, 408/409/429 and 5xx, a provider's explicit `x-should-retry`, and
errors a provider reports mid-stream. A transient error carries the provider's `Retry-After`.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from datetime import UTC

import httpx
import openai

from errand.errors import AgentError, PermanentError, TransientError

__all__ = ["GENERIC_HINTS", "classify_provider_error", "is_transient_status", "parse_retry_after"]

_TRANSIENT_STATUS = frozenset({408, 409, 429})
"""Besides every 5xx: the statuses the openai SDK itself would retry (timeout, lock conflict, rate limit)."""
_TRANSIENT_STREAM_ERRORS = frozenset(
    {"server_error", "overloaded_error", "rate_limit_exceeded", "rate_limit_error"}
)
"""Error types a provider may report *inside* a stream (after a 200) that another attempt can cure."""
GENERIC_HINTS: Mapping[int, str] = {
    401: " (check the API key)",
    403: " (the API key is not allowed to use this model or endpoint)",
    404: " (check the model name and the base URL)",
}
"""What to check after a refusal; the LLM agent names its own config keys instead."""


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), else None."""
    millis = _finite(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _finite(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def classify_provider_error(
    exc: BaseException,
    where: str,
    *,
    within: str = "in time",
    hints: Mapping[int, str] = GENERIC_HINTS,
) -> AgentError:
    """The one mapping of provider failures: transient ones are retried by the engine, others fail.

    `where` names the model and endpoint, `within` the timeout that expired, for the message."""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return TransientError(f"{where}: no answer {within}")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        cause = exc.__cause__ or exc
        return TransientError(f"{where}: connection failed ({type(cause).__name__}: {cause})")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, where, hints)
    if isinstance(exc, openai.APIError) and (
        exc.type in _TRANSIENT_STREAM_ERRORS or exc.code == "server_error"
    ):
        return TransientError(f"{where}: the provider failed mid-answer: {exc.message}")
    return PermanentError(f"{where}: {type(exc).__name__}: {exc}")


def is_transient_status(status: int) -> bool:
    """The statuses worth another attempt: every 5xx, and 408, 409, 429."""
    return status in _TRANSIENT_STATUS or status >= 500


def _status_error(exc: openai.APIStatusError, where: str, hints: Mapping[int, str]) -> AgentError:
    status = exc.status_code
    detail = _provider_message(exc)
    should_retry = exc.response.headers.get("x-should-retry")  # the provider's explicit word wins
    transient = is_transient_status(status)
    if should_retry in ("true", "false"):
        transient = should_retry == "true"
    if transient:
        return TransientError(
            f"{where}: provider answered HTTP {status}: {detail}",
            retry_after=parse_retry_after(exc.response.headers),
        )
    return PermanentError(
        f"{where}: provider refused the request with HTTP {status}: {detail}{hints.get(status, '')}"
    )


def _provider_message(exc: openai.APIStatusError) -> str:
    """The provider's own words: `error.message` of an OpenAI-style body, else the raw body."""
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message
