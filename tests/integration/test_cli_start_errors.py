"""`errand serve` refuses to start with one line and exit code 2, before its banner: a handler
that cannot be imported (naming the agent), a port already in use (naming it and `--port`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sdk_server import REPO, write_formation

ERRAND = Path(sys.executable).with_name("errand")
pytestmark = pytest.mark.slow


def _serve(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [str(ERRAND), "serve", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_an_unimportable_handler_is_one_line_naming_the_agent_before_the_banner(tmp_path: Path) -> None:
    agents = [
        {"id": "echo", "handler": "errand.agents.builtin:echo", "default": True},
        {"id": "broken-one", "handler": "no_such_module_anywhere:run"},
    ]
    done = _serve(write_formation(tmp_path, agents=agents), "--port", "0")
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert "broken-one" in line and "no_such_module_anywhere" in line
    assert "errand 0" not in done.stderr and "Traceback" not in done.stderr  # no banner, no trace


def test_a_handler_raising_on_import_is_one_line_too(tmp_path: Path) -> None:
    (tmp_path / "raising_agent.py").write_text(
        "raise RuntimeError('no config for you')\ndef run(m, c): ...\n"
    )
    agents = [{"id": "raiser", "handler": "raising_agent:run", "default": True}]
    done = _serve(write_formation(tmp_path, agents=agents), "--port", "0")
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert "raiser" in line and "no config for you" in line


def test_a_port_in_use_is_one_line_naming_it_and_the_option(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _serve(write_formation(tmp_path), "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert f"port {port}" in line and "already in use" in line and "--port" in line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "errand.db").exists()  # nothing started: no store was opened
