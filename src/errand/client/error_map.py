"""Error answers -> the errand.errors class the server raised; transport failures -> one class.

The class comes from the envelope's wire code (`errors.BY_CODE`); an answer without an envelope
(a proxy's 502) is classed by its HTTP status (`error_status.BY_STATUS`, as the server classes
its own routing errors). httpx transport failures (refused, reset, timed out) become
ServiceUnavailable, so an SDK caller catches one tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from errand.error_status import BY_STATUS
from errand.errors import BY_CODE, ErrandError, ServiceUnavailable


def _error_from_response(status_code: int, body: bytes) -> ErrandError:
    """The errand error an HTTP error answer stands for, with `.status_code` and `.details`.

    The class comes from the envelope's code (BY_CODE); an unknown code gives ErrandError with
    `.code` set to the wire code; an answer without an envelope (a proxy's 502) is classed by
    its HTTP status.
    """
    code, message, details = None, "", None
    try:
        envelope = json.loads(body).get("error")
    except (ValueError, AttributeError):
        envelope = None
    if isinstance(envelope, Mapping):
        code, message, details = (
            envelope.get("code"),
            str(envelope.get("message") or ""),
            envelope.get("details"),
        )
    cls = BY_CODE.get(str(code)) if code else BY_STATUS.get(status_code)
    if not message:
        message = body.decode("utf-8", "replace")[:500].strip() or f"HTTP {status_code}"
    exc = (cls or ErrandError)(message, details=details)
    # errors.py knows no HTTP, so the status (and an unknown wire code) live on the instance
    vars(exc)["status_code"] = status_code
    if code and cls is None:
        vars(exc)["code"] = str(code)
    return exc


@contextmanager
def _transport_errors(base_url: str) -> Iterator[None]:
    """Translate httpx transport failures (refused, reset, timed out) into ServiceUnavailable."""
    try:
        yield
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"cannot reach errand at {base_url}: {exc or type(exc).__name__}") from exc
