"""The physical ceiling: a bare Starlette endpoint on the same uvicorn settings errand uses.

It answers POST /v1/chat with a fixed 202 JSON body after reading the request body, doing no
validation, no auth and no storage. errand's submit throughput is reported as a ratio of this.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = b'{"request_id":"req_bare","status":"pending","delivery":"polling"}'


async def chat(request: Request) -> Response:
    await request.body()
    return Response(_BODY, status_code=202, media_type="application/json")


app = Starlette(routes=[Route("/v1/chat", chat, methods=["POST"])])
