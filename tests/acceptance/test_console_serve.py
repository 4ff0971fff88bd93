"""`errand serve` serves the console at /ui, names it in its banner, and `--no-ui` turns it off
for one run (the API stays as it is)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.procs import serving, write_formation
from tests.support.server import ADMIN_KEY

pytestmark = pytest.mark.slow


def _formation(tmp_path: Path) -> Path:
    return write_formation(
        tmp_path,
        {
            "name": "ui",
            "keys": {"admin": [ADMIN_KEY]},
            "storage": {"url": f"sqlite:///{tmp_path / 'errand.db'}"},
        },
    )


def test_serve_serves_the_console_and_says_where(tmp_path: Path) -> None:
    with serving(_formation(tmp_path), tmp_path / "serve.log", "--no-workers") as (base, proc):
        page = httpx.get(f"{base}/ui")
        assert page.status_code == 200 and 'src="/ui/static/app.js"' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert httpx.get(f"{base}/ui/static/app.css").status_code == 200
    assert f"console  {base}/ui" in proc.tail(80)


def test_no_ui_leaves_the_console_out(tmp_path: Path) -> None:
    with serving(_formation(tmp_path), tmp_path / "serve.log", "--no-workers", "--no-ui") as (base, proc):
        for path in ("/ui", "/ui/", "/ui/static/app.js"):
            r = httpx.get(base + path)
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
        assert httpx.get(f"{base}/v1/agents", headers={"X-Muxi-Admin-Key": ADMIN_KEY}).status_code == 200
    assert "console  off" in proc.tail(80)
