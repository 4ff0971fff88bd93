"""errand's error answers in OpenAI's shape, for the OpenAI-compatible routes (/v1/responses).

The status still comes from errand's one table (error_status.py `STATUS`): an error answer of
errand's shape `{"error": {"code", "message", "details"}}` is rewritten to OpenAI's
`{"error": {"message", "type", "param", "code"}}`, so the official SDKs raise the exception
class they map each status to. Only one status differs: a body that is JSON but invalid (422
in errand) is OpenAI's 400 invalid_request_error. `param` is the field errand names in
`details`; `code` is errand's code in lower case unless `details` names OpenAI's own
(e.g. `model_not_found`).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from errand.api.context import ApiContext, Endpoint, Handler, endpoint
from errand.api.errors import json_response

STATUS_OVERRIDE = {422: 400}
"""errand status -> OpenAI status where they differ."""
TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
"""OpenAI error `type` by status; other 4xx are invalid_request_error, 5xx server_error."""


def openai_endpoint(ctx: ApiContext, handler: Handler) -> Endpoint:
    """`endpoint()` (auth, formation, errors), with its error answers in OpenAI's shape."""
    inner = endpoint(ctx, handler)

    async def run(request: Any) -> Response:
        return to_openai(await inner(request))

    run.__name__ = handler.__name__
    return run


def to_openai(response: Response) -> Response:
    """An errand error answer rewritten in OpenAI's shape; any other answer unchanged."""
    if response.status_code < 400 or response.media_type != "application/json":
        return response
    try:
        error = orjson.loads(bytes(response.body))["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return response
    status = STATUS_OVERRIDE.get(response.status_code, response.status_code)
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
    }
    return json_response({"error": openai_error(status, error)}, status, headers)


def openai_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's error object for errand's `{"code", "message", "details"}` at `status`."""
    details = error.get("details")
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else details
    named = first if isinstance(first, dict) else {}
    kind = TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = named.get("openai_code") or str(error.get("code", "")).lower() or None
    return {"message": error.get("message", ""), "type": kind, "param": named.get("field"), "code": code}
