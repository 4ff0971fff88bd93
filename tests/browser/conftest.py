"""The console under test: a real `errand serve` subprocess (SQLite) with agents the tests
control (tests/support/agents.py: `steady` progress, `broken` with a traceback, `echo`, and
two that ask a person: `asker` a JSON object, `colour` free text), a
webhook receiver that fails its first POST, one trigger, and an admin, a viewer and a client
key; and real headless Chromium (tests/support/browser.py) signed in as one of them.

One server serves the whole module (starting one costs seconds); every test opens its own
browser context, so cookies never leak between tests. Each page records the script errors
and Content-Security-Policy violations Chromium reports; a test fails on any.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.browser import DESKTOP, browser_or_skip, launch
from tests.support.procs import Proc, serving, write_formation
from tests.support.server import ADMIN_KEY, CLIENT_KEY, REPO
from tests.support.webhook_receiver import Receiver, receiving

VIEWER_KEY = "viewer-key-dddddddd"
TRIGGER = """\
---
agent: echo
use_async: true
description: Summarize a support ticket
---
Ticket from ${{ data.customer }}: ${{ data.subject }}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module: the sync Playwright API runs its own event loop in this thread,
    so it must stop before any asyncio test of another module runs (module scope, not session)."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@dataclass
class Console:
    """The running server, its webhook receiver, and an admin httpx client for the API side."""

    base: str
    receiver: Receiver
    proc: Proc
    api: httpx.Client

    def submit(
        self, agent: str, message: str = "hello", *, webhook: bool = False, user: str = "0", **metadata: Any
    ) -> str:
        body: dict[str, Any] = {"message": message, "agent_id": agent, "mode": "async", "metadata": metadata}
        if webhook:
            body["webhook_url"] = self.receiver.url
        r = self.api.post("/v1/chat", json=body, headers={"X-Muxi-User-Id": user})
        assert r.status_code == 202, r.text
        request_id: str = r.json()["request_id"]
        return request_id

    def doc(self, request_id: str) -> dict[str, Any]:
        r = self.api.get(f"/v1/requests/{request_id}")
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def wait(
        self, request_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.doc(request_id)
            if check(doc):
                return doc
            assert time.monotonic() < deadline, f"{request_id}: {doc['status']} {doc.get('progress')}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    browser_or_skip()
    folder = tmp_path_factory.mktemp("console")
    (folder / "triggers").mkdir()
    (folder / "triggers" / "ticket.md").write_text(TRIGGER)
    data = {
        "name": "console",
        "keys": {"client": [CLIENT_KEY], "admin": [ADMIN_KEY], "viewer": [VIEWER_KEY]},
        "storage": {"url": f"sqlite:///{folder / 'errand.db'}", "sqlite_synchronous": "normal"},
        "async": {
            "mode": "async",
            "webhook_allow_hosts": ["127.0.0.1"],
            "webhook_retries": 0,
            "webhook_initial_delay": 0.1,
        },
        "workflow": {"task_timeout": 300, "retry": {"max_attempts": 1}},
        "workers": {"concurrency": 16, "lease_seconds": 10, "poll_interval": 0.2},
        "agents": [
            {"id": "echo", "handler": "tests.support.agents:echo", "default": True},
            {
                "id": "steady",
                "handler": "tests.support.agents:steady",
                "description": "Reports steady progress",
            },
            {"id": "broken", "handler": "tests.support.agents:broken", "description": "Always fails"},
            {"id": "asker", "handler": "tests.support.agents:asker", "description": "Asks for a name"},
            {"id": "colour", "handler": "tests.support.agents:asks_text", "description": "Asks a colour"},
        ],
    }
    config = write_formation(folder, data)
    with (
        receiving([500]) as receiver,
        serving(config, folder / "serve.log", env={"PYTHONPATH": str(REPO)}) as (base, proc),
        httpx.Client(base_url=base, headers={"X-Muxi-Admin-Key": ADMIN_KEY}, timeout=30) as api,
    ):
        yield Console(base, receiver, proc, api)


@dataclass
class Pages:
    """Opens signed-in pages, each in its own browser context; closes them all afterwards."""

    browser: Any
    console: Console
    contexts: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def blank(self, *, viewport: dict[str, int] = DESKTOP, dark: bool = False) -> Any:
        context = self.browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light")
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        page.on("console", self._console_message)
        return page

    def _console_message(self, msg: Any) -> None:
        text = msg.text
        if "Content Security Policy" in text or (
            msg.type == "error" and "Failed to load resource" not in text
        ):
            self.problems.append(f"console {msg.type}: {text}")

    def signed_in(
        self, key: str = ADMIN_KEY, role: str = "admin", hash: str = "#/overview", **kw: Any
    ) -> Any:
        from playwright.sync_api import expect

        page = self.blank(**kw)
        page.goto(f"{self.console.base}/ui{hash}")
        page.fill("#key", key)
        page.click("#sign-in")
        expect(page.locator("#role")).to_have_text(role)
        return page


@pytest.fixture
def pages(browser: Any, console: Console) -> Iterator[Pages]:
    opened = Pages(browser, console)
    yield opened
    for context in opened.contexts:
        context.close()
    assert opened.problems == [], opened.problems
