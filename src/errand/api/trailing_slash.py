"""The ASGI middleware that serves `/path/` as `/path` (api/app.py installs it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class NoTrailingSlash:
    """Serves `/path/` as `/path`: one route per resource, whichever way a client writes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            raw = scope.get("raw_path")
            scope = {**scope, "path": path.rstrip("/") or "/"}
            if isinstance(raw, bytes):
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
