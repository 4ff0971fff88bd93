"""Real headless Chromium for the console tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser download is never used (`executable_path`). When Chromium or the
playwright package is missing, `browser_or_skip` skips the test saying which, unless
ERRAND_REQUIRE_BROWSER=1 (CI sets it in .ci/run): then it fails instead, so the browser tests
run or fail there, never skip. Screenshots go to build/screenshots/ (gitignored).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("ERRAND_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def browser_or_skip() -> None:
    reason = missing()
    if reason is None:
        return
    if os.environ.get("ERRAND_REQUIRE_BROWSER") == "1":
        pytest.fail(f"ERRAND_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot under build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
