"""The error handlers: every error leaves the server as `{"error": {"code", "message", "details"}}`.

Codes come from the ErrandError classes (errors.py); their HTTP statuses from the one table,
error_status.py (`STATUS`), looked up along the exception's MRO so a subclass inherits its
parent's status unless listed itself. A routing error (Starlette's HTTPException) gets the code
of the class its bare status stands for (`BY_STATUS`). Anything unexpected becomes a logged 500
INTERNAL_ERROR whose message reveals nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from errand.error_status import BY_STATUS, status_of_class
from errand.errors import ErrandError, RateLimited, ServiceUnavailable, Unauthorized
from errand.errors import MalformedBody as MalformedBody  # re-exported: the HTTP layer raises it

log = logging.getLogger("errand.api")

WWW_AUTHENTICATE = 'Bearer realm="errand", charset="UTF-8"'
RETRY_AFTER_S = 1


def status_of(exc: ErrandError) -> int:
    """HTTP status of an errand error: the first class of its MRO found in STATUS."""
    return status_of_class(type(exc))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with orjson (the fast path for every answer)."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def errand_error_response(exc: ErrandError) -> Response:
    """Render an ErrandError; 5xx-class surprises (LeaseLost, ConfigError...) stay generic."""
    status = status_of(exc)
    if status == 500:
        log.error("unexpected errand error: %r", exc, exc_info=exc)
        return json_response(error_body("INTERNAL_ERROR", "Internal server error"), 500)
    log.debug("answered %d %s: %s", status, exc.code, exc.message)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    elif isinstance(exc, RateLimited | ServiceUnavailable):
        headers["Retry-After"] = str(_retry_after(exc))
    return json_response(error_body(exc.code, exc.message, exc.details), status, headers)


def unexpected_error_response(exc: BaseException) -> Response:
    """Last resort: log the traceback, tell the client nothing about internals."""
    log.error("unhandled exception in request", exc_info=exc)
    return json_response(error_body("INTERNAL_ERROR", "Internal server error"), 500)


def to_response(exc: Exception) -> Response:
    """Any exception raised by an endpoint -> its error response."""
    if isinstance(exc, ErrandError):
        return errand_error_response(exc)
    if isinstance(exc, HTTPException):
        return _http_exception_response(exc)
    if isinstance(exc, ClientDisconnect):  # the client left mid-body: nobody reads an answer
        log.info("client disconnected before sending its whole request body")
        return json_response(error_body("INVALID_REQUEST", "client disconnected"), 400)
    return unexpected_error_response(exc)


def _retry_after(exc: ErrandError) -> int:
    value = getattr(exc, "retry_after", None)
    if isinstance(exc.details, dict):
        value = exc.details.get("retry_after", value)
    if isinstance(value, int | float) and value > 0:
        return max(1, round(value))
    return RETRY_AFTER_S


def _http_exception_response(exc: HTTPException) -> Response:
    status = exc.status_code
    known = BY_STATUS.get(status)
    code = known.code if known else "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST"
    headers = dict(exc.headers or {})
    if status == 404:
        message = "Resource not found"
    elif status == 405:
        message = "Method not allowed" + (f"; allowed: {headers['Allow']}" if "Allow" in headers else "")
    else:
        message = str(exc.detail)
    return json_response(error_body(code, message), status, headers)


async def handle_errand_error(request: Request, exc: Exception) -> Response:
    """Starlette handler for ErrandError raised outside our endpoint wrapper."""
    return to_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette handler for routing errors: unknown route -> 404, wrong method -> 405."""
    return to_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Starlette's last-resort handler (ServerErrorMiddleware)."""
    return unexpected_error_response(exc)


EXCEPTION_HANDLERS = {
    ErrandError: handle_errand_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
