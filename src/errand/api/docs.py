"""GET /docs: the API reference page (Swagger UI over /openapi.json), with no CDN.

Its script and stylesheet are served by this server from the `swagger-ui-py` package's copy of
Swagger UI (GET /docs/{asset}, a fixed list of files), so the page works on a host without
internet access and leaks no visit to a third party. The online spec validator badge is off
for the same reason.
"""

from __future__ import annotations

import importlib.resources
from functools import cache

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from errand.api.context import ApiContext
from errand.errors import ResourceNotFound

ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
}
"""The files /docs/{asset} serves (nothing else of the package is reachable)."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>errand API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false
});
</script>
</body>
</html>
"""


async def docs_page(request: Request, ctx: ApiContext) -> Response:
    """GET /docs."""
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})


async def docs_asset(request: Request, ctx: ApiContext) -> Response:
    """GET /docs/{asset}: one of ASSETS, else 404."""
    name = request.path_params["asset"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ResourceNotFound("Resource not found")
    return Response(_read(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@cache
def _read(name: str) -> bytes:
    return (importlib.resources.files("swagger_ui") / "static" / name).read_bytes()
