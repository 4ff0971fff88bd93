"""A framework's exception as errand judges it: provider failures become Transient/PermanentError.

Frameworks raise the provider SDK's exceptions themselves (the Agents SDK), subclass them
(LangChain's `OpenAIRateLimitError` is an `openai.RateLimitError`) or wrap them, keeping the
original as `__cause__` (PydanticAI's `ModelHTTPError`). So the `__cause__` chain is searched for
the first `openai`/`httpx` error, judged by the one rule the LLM agent uses
(agents/provider_errors.py); failing that, for an error carrying an HTTP `status_code` (another
provider's SDK). Anything else -- a bug in a tool, a framework's own limit -- is returned as it
is, and the engine judges it (engine/retry.py).
"""

from __future__ import annotations

import httpx
import openai

from errand.agents.provider_errors import classify_provider_error, is_transient_status
from errand.errors import ErrandError, PermanentError, TransientError

__all__ = ["as_errand_error"]

_MAX_DEPTH = 6


def as_errand_error(exc: BaseException, framework: str) -> BaseException:
    """What to raise instead of `exc` (the same object when errand has nothing to add)."""
    if isinstance(exc, ErrandError):
        return exc
    chain = _chain(exc)
    for link in chain:
        if isinstance(link, openai.OpenAIError | httpx.TransportError):
            return classify_provider_error(link, _where(framework, link))
    for link in chain:
        status = getattr(link, "status_code", None)
        if isinstance(status, int) and 400 <= status <= 599:
            return _by_status(link, status, framework)
    return exc


def _chain(exc: BaseException) -> list[BaseException]:
    """exc, its cause, the cause's cause... (explicit causes only; bounded, cycle-safe)."""
    found: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(found) < _MAX_DEPTH and link not in found:
        found.append(link)
        link = link.__cause__
    return found


def _where(framework: str, exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    if isinstance(request, httpx.Request):
        return f"{framework}: model call to {request.url.copy_with(query=None)}"
    return f"{framework}: model call"


def _by_status(exc: BaseException, status: int, framework: str) -> ErrandError:
    where = f"{framework}: model call"
    if is_transient_status(status):
        delay = getattr(exc, "retry_after", None)
        retry_after = float(delay) if isinstance(delay, int | float) else None
        return TransientError(f"{where}: provider answered HTTP {status}: {exc}", retry_after=retry_after)
    return PermanentError(f"{where}: provider refused the request with HTTP {status}: {exc}")
