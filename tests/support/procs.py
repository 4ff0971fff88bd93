"""Real `errand` subprocesses for acceptance tests: start, wait until ready, SIGKILL, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

ERRAND = str(Path(sys.executable).with_name("errand"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_formation(folder: Path, data: dict[str, Any], agents_code: str | None = None) -> Path:
    """Write formation.yaml (and an agents module importable as `slow_agents`) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "formation.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if agents_code is not None:
        (folder / "slow_agents.py").write_text(agents_code)
    return path


class Proc:
    """One errand process (serve or worker) with its log file."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.args, self.log, self.preexec = args, log, preexec
        self.env = {**os.environ, **(env or {})}
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.p = subprocess.Popen(
                [ERRAND, *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=self.preexec,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.p is not None and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if self.p is not None and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def cli_secret(config: Path, env: dict[str, str] | None = None) -> str:
    """What `errand webhook-secret --config F` prints: the secret the formation signs with."""
    done = subprocess.run(
        [ERRAND, "webhook-secret", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def wait_ready(base_url: str, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p is not None and proc.p.poll() is not None:
            raise RuntimeError(f"errand exited with {proc.p.returncode}:\n{proc.tail()}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"errand at {base_url} not ready after {timeout}s:\n{proc.tail()}")


@contextmanager
def serving(
    config: Path,
    log: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> Iterator[tuple[str, Proc]]:
    """`errand serve` on a free port until the block ends; `preexec` runs in the child before
    exec (e.g. to lower its open-file limit)."""
    port = free_port()
    proc = Proc(
        ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port), *extra],
        log,
        env,
        preexec,
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base, proc
    finally:
        proc.stop()
