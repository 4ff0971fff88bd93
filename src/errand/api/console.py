"""GET /ui and GET /ui/static/{asset}: the web console, a static single-page app in the package.

The console is plain files (`errand/ui/static/`: index.html, ES modules, one stylesheet),
written for errand and shipped in the wheel: no CDN, no external font, nothing fetched from a
third party. It talks to the server only through the public API, as the SDK does: the session
cookie of `POST /ui/session` authenticates its calls, so it has no route of its own beyond
these files. Only the files of that folder with a known type are reachable (the list is read
once); `/ui/static/{asset}` takes no slash, so nothing outside the folder can be named.

Every answer carries strict headers: a Content-Security-Policy allowing this origin only and
no inline script (the console has none), no framing (X-Frame-Options DENY and
frame-ancestors 'none'), no referrer, nosniff. Files are revalidated by ETag on each load, so
an upgraded server is never run with a stale script. `ui.enabled: false` or
`errand serve --no-ui` leaves these routes out (404).
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from functools import cache

from starlette.requests import Request
from starlette.responses import Response

from errand.api.context import ApiContext
from errand.errors import ResourceNotFound

__all__ = ["HEADERS", "console_asset", "console_page"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
"""Sent with the page and with every asset."""
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
PAGE = "index.html"


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    media_type: str
    etag: str


@cache
def _files() -> dict[str, _File]:
    """Every servable file of errand/ui/static, by name (read once per process)."""
    folder = importlib.resources.files("errand") / "ui" / "static"
    found: dict[str, _File] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in MEDIA_TYPES:
            body = entry.read_bytes()
            found[entry.name] = _File(body, MEDIA_TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return found


def _answer(request: Request, file: _File) -> Response:
    headers = {**HEADERS, "ETag": file.etag}
    if request.headers.get("if-none-match") == file.etag:
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


async def console_page(request: Request, ctx: ApiContext) -> Response:
    """GET /ui (and /ui/): the console's page; its router works on the URL's #fragment."""
    return _answer(request, _files()[PAGE])


async def console_asset(request: Request, ctx: ApiContext) -> Response:
    """GET /ui/static/{asset}: one of the console's scripts, its stylesheet or its icon."""
    name = request.path_params["asset"]
    file = _files().get(name) if name != PAGE else None
    if file is None:
        raise ResourceNotFound("Resource not found")
    return _answer(request, file)
