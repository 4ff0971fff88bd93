"""GET /ui and /ui/static/{asset}: the console's files come from the package, with strict
headers, nothing else is reachable, and `ui.enabled: false` takes the console away."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from errand.api.console import CSP, MEDIA_TYPES
from tests.support.server import Server

STATIC = Path(__file__).resolve().parents[2] / "src" / "errand" / "ui" / "static"
STRICT = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def _strict(r: httpx.Response) -> None:
    for name, value in STRICT.items():
        assert r.headers[name] == value, name


@pytest.mark.parametrize("path", ["/ui", "/ui/"])
def test_the_page_is_served_with_strict_headers(server: Server, path: str) -> None:
    r = httpx.get(server.base + path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    _strict(r)
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    assert '<script type="module" src="/ui/static/app.js"></script>' in r.text


def test_the_page_has_no_inline_script_and_loads_nothing_from_elsewhere() -> None:
    for file in STATIC.iterdir():
        text = file.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{file.name} names another host"
        assert "@import" not in text and "url(" not in text, file.name
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="/ui/static/app.js">']
    assert "<style" not in page and not re.search(r"\s(style|on\w+)=", page)


def test_every_asset_is_served_with_its_type_and_revalidates_by_etag(server: Server) -> None:
    names = sorted(p.name for p in STATIC.iterdir() if p.name != "index.html")
    assert {"app.js", "api.js", "app.css", "detail.js", "overview.js"} <= set(names)
    for name in names:
        r = httpx.get(f"{server.base}/ui/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"] == MEDIA_TYPES["." + name.rpartition(".")[2]]
        assert r.content == (STATIC / name).read_bytes()
        _strict(r)
        again = httpx.get(f"{server.base}/ui/static/{name}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "name", ["index.html", "nope.js", "..%2Fapi%2Fconsole.py", "%2e%2e", "__init__.py", "app.js.map"]
)
def test_nothing_else_is_reachable(server: Server, name: str) -> None:
    r = httpx.get(f"{server.base}/ui/static/{name}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"


def test_ui_enabled_false_serves_no_console(make_server: Callable[..., Server]) -> None:
    srv = make_server(ui={"enabled": False}, with_workers=False)
    for path in ("/ui", "/ui/static/app.js"):
        assert httpx.get(srv.base + path).status_code == 404
    assert httpx.get(srv.base + "/health").status_code == 200
