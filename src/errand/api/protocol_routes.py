"""The routes of the other protocols errand speaks: OpenAI's Responses API and A2A.

Each answers in its own protocol's shapes (OpenAI's errors; A2A's JSON-RPC), so api/app.py's
route table mounts them from here rather than listing them beside errand's own routes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errand.api.context import ApiContext
from errand.api.openai_errors import openai_endpoint
from errand.api.responses import cancel_response, create_response, delete_response, get_response
from errand.config import Config

log = logging.getLogger("errand.api")


def responses_routes(ctx: ApiContext) -> list[BaseRoute]:
    """OpenAI's Responses API (api/responses.py): errors in OpenAI's shape."""
    one = {"GET": openai_endpoint(ctx, get_response), "DELETE": openai_endpoint(ctx, delete_response)}
    one["HEAD"] = one["GET"]

    async def by_verb(request: Request) -> Response:
        return await one[request.method](request)

    return [
        Route("/v1/responses", openai_endpoint(ctx, create_response), methods=["POST"]),
        Route("/v1/responses/{response_id}", by_verb, methods=["GET", "DELETE"]),
        Route("/v1/responses/{response_id}/cancel", openai_endpoint(ctx, cancel_response), methods=["POST"]),
    ]


def a2a_routes_if_served(ctx: ApiContext) -> list[BaseRoute]:
    """The A2A routes when `a2a.enabled` and the `a2a` extra (a2a-sdk) is installed."""
    reason = a2a_off_reason(ctx.config)
    make = _a2a_routes() if reason is None else None
    if make is None:
        log.debug("A2A not served: %s", reason)
        return []
    return make(ctx)


def a2a_off_reason(config: Config) -> str | None:
    """Why A2A is not served, in the words `errand serve` prints (None: it is served), so a
    user who reads the README's A2A section after `./run` learns what to install."""
    if not config.a2a.enabled:
        return "a2a.enabled: false"
    if _a2a_routes() is None:
        return "the a2a extra is not installed: pip install 'errand[a2a]'"
    return None


def _a2a_routes() -> Callable[[ApiContext], list[BaseRoute]] | None:
    """api/a2a_routes.py's route maker, or None when a2a-sdk (or what it needs) is missing."""
    try:
        from errand.api.a2a_routes import a2a_routes
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith(("a2a", "sse_starlette")):
            raise
        return None
    return a2a_routes
