"""A live errand server for the SDK and CLI tests: create_app under uvicorn on 127.0.0.1:0, in a thread.

The formation lives in its own folder (with a `triggers/` folder), uses a SQLite file there,
the built-in `echo`/`sleep` agents, the offline demo agent (fast steps) and `fail` below.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from errand.agents.base import RunContext
from errand.api.app import create_app
from errand.config import Config, load_config
from errand.errors import PermanentError

CLIENT_KEY = "sdk-client-key-1111"
OTHER_KEY = "sdk-client-key-2222"
ADMIN_KEY = "sdk-admin-key-3333"
FORMATION = "sdkform"

TRIGGER = """\
---
agent: echo
use_async: false
description: Echo an issue title
---
Issue: ${{ data.issue.title }}
"""


async def fail(message: str, ctx: RunContext) -> str:
    """An agent that fails at once, permanently."""
    raise PermanentError(f"cannot do {message!r}")


def formation(storage_url: str, **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": FORMATION,
        "keys": {"client": [CLIENT_KEY, OTHER_KEY], "admin": [ADMIN_KEY]},
        "storage": {"url": storage_url, "sqlite_synchronous": "normal"},
        "async": {"mode": "auto", "threshold_seconds": 30, "sync_wait_seconds": 0.5},
        "workflow": {"task_timeout": 30, "retry": {"max_attempts": 1}},
        "workers": {"concurrency": 8, "lease_seconds": 5, "poll_interval": 0.1},
        "agents": [
            {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True},
            {"id": "demo", "handler": "errand.agents.demo:run", "options": {"step_seconds": 0.25}},
            {"id": "sleepy", "handler": "errand.agents.builtin:sleep"},
            {"id": "fail", "handler": "tests.integration.sdk_fixtures:fail"},
        ],
    }
    doc.update(sections)
    return doc


def write_formation(folder: Path, **sections: Any) -> Path:
    """formation.yaml (and triggers/echo-issue.md) in `folder`; returns the YAML's path."""
    (folder / "triggers").mkdir(parents=True, exist_ok=True)
    (folder / "triggers" / "echo-issue.md").write_text(TRIGGER, encoding="utf-8")
    path = folder / "formation.yaml"
    path.write_text(
        yaml.safe_dump(formation(f"sqlite:///{folder / 'errand.db'}", **sections)), encoding="utf-8"
    )
    return path


@dataclass
class LiveServer:
    url: str
    config: Config
    config_path: Path


class _Uvicorn:
    """uvicorn in a daemon thread with its own event loop (no signal handlers off the main thread)."""

    def __init__(self, config: Config, with_workers: bool) -> None:
        app = create_app(config, with_workers=with_workers)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                loop="asyncio",
                ws="none",
                lifespan="on",
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=2,
            )
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the SDK test server did not start")
            time.sleep(0.01)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        if self.thread.is_alive():
            raise RuntimeError("the SDK test server did not stop")


@contextmanager
def running_server(folder: Path, *, with_workers: bool = True, **sections: Any) -> Iterator[LiveServer]:
    """Write a formation into `folder`, serve it, and stop the server afterwards."""
    path = write_formation(folder, **sections)
    config = load_config(path)
    runner = _Uvicorn(config, with_workers)
    port = runner.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", config, path)
    finally:
        runner.stop()
