"""A live errand server for the SDK and CLI tests: create_app in a ServerThread (tests/support/server.py),
or a real `errand serve` process (`serve_process`, tests/support/procs.py) that a test may kill
and start again on the same port.

The formation lives in its own folder (with a `triggers/` folder), uses a SQLite file there,
the built-in `echo`/`sleep` agents, the offline demo agent (fast steps) and the test `fail`
agent (tests/support/agents.py), so a CLI process started with the repository on PYTHONPATH
can load it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from errand.api.app import create_app
from errand.config import Config, load_config
from tests.support.procs import Proc, free_port, wait_ready
from tests.support.server import ServerThread

REPO = Path(__file__).resolve().parents[2]

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
            {"id": "fail", "handler": "tests.support.agents:fail"},
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


@contextmanager
def running_server(folder: Path, *, with_workers: bool = True, **sections: Any) -> Iterator[LiveServer]:
    """Write a formation into `folder`, serve it, and stop the server afterwards."""
    path = write_formation(folder, **sections)
    config = load_config(path)
    runner = ServerThread(create_app(config, with_workers=with_workers), name="uvicorn-sdk").start()
    try:
        yield LiveServer(runner.url, config, path)
    finally:
        runner.stop()


@dataclass
class ServeProcess:
    """`errand serve` on a fixed port: `kill()` SIGKILLs it, `start()` serves the same
    formation (and database) on the same port again."""

    url: str
    config_path: Path
    port: int
    log: Path
    proc: Proc | None = None

    def start(self) -> ServeProcess:
        args = ["serve", "--config", str(self.config_path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = Proc(args, self.log, env={"PYTHONPATH": str(REPO)}).start()
        wait_ready(self.url, self.proc)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


@contextmanager
def serve_process(folder: Path, **sections: Any) -> Iterator[ServeProcess]:
    """A real `errand serve` subprocess on the SDK formation, stopped afterwards."""
    path = write_formation(folder, **sections)
    port = free_port()
    server = ServeProcess(f"http://127.0.0.1:{port}", path, port, folder / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()
