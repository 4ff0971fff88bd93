"""The A2A routes: the agent card and the JSON-RPC endpoint, served by a2a-sdk's own dispatcher.

Mounted by api/app.py when the `a2a` extra (a2a-sdk) is installed and `a2a.enabled` is true.
errand keeps what is its own in front of the SDK: the caller must present a client key
(`Authorization: Bearer` or `X-Muxi-Client-Key`; a missing or wrong one is errand's 401
document, not a JSON-RPC error), and the body is capped at `server.max_body_bytes` before the
SDK parses it. The caller's Owner travels to the handler in the call context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive

from errand import __version__
from errand.api.a2a_card import A2A_PATH, agent_card
from errand.api.a2a_handler import OWNER_STATE, ErrandRequestHandler
from errand.api.body import read_body
from errand.api.context import ApiContext, base_path, check_formation
from errand.api.errors import to_response
from errand.api.session_auth import authenticate

Endpoint = Callable[[Request], Awaitable[Response]]


class _OwnerContext(DefaultServerCallContextBuilder):
    """The SDK's call context (headers, extensions) plus the Owner the route authenticated."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[OWNER_STATE] = request.scope[OWNER_STATE]
        return context


def a2a_routes(ctx: ApiContext) -> list[BaseRoute]:
    """GET /.well-known/agent-card.json (public) and POST /a2a (a client key)."""
    dispatcher = JsonRpcDispatcher(request_handler=ErrandRequestHandler(ctx), context_builder=_OwnerContext())
    return [
        Route(AGENT_CARD_WELL_KNOWN_PATH, _card(ctx), methods=["GET"]),
        Route(A2A_PATH, _rpc(ctx, dispatcher.handle_requests), methods=["POST"]),
    ]


def _card(ctx: ApiContext) -> Endpoint:
    async def agent_card_json(request: Request) -> Response:
        try:
            check_formation(request, ctx)
            base = str(request.base_url).rstrip("/") + base_path(request)
            card = agent_card(ctx.config.name, __version__, base, ctx.config.agents, ctx.triggers.values())
            return JSONResponse(agent_card_to_dict(card))
        except Exception as exc:
            return to_response(exc)

    return agent_card_json


def _rpc(ctx: ApiContext, handle: Endpoint) -> Endpoint:
    async def a2a_jsonrpc(request: Request) -> Response:
        try:
            check_formation(request, ctx)
            owner = await authenticate(request, ctx.auth, lambda: ctx.store)  # a viewer: 403
            raw = await read_body(request, ctx.config.server.max_body_bytes)
        except Exception as exc:
            return to_response(exc)
        request.scope[OWNER_STATE] = owner
        return await handle(Request(request.scope, _replay(raw, request.receive)))

    return a2a_jsonrpc


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, then the connection's own messages
    (so a streaming answer still hears the client disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay
