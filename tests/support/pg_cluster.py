"""A private, throw-away PostgreSQL server for tests that stop or restart the server itself.

The shared server (tests/support/pg_fixtures.py) is used by other test sessions at the same time, so a
test must never restart it. This one is ours alone: `initdb` into a temporary folder, served on a
free loopback port with no Unix socket, stopped and deleted at the end. PostgreSQL refuses to run
as root, so as root its tools run as the `postgres` account (the owner of the folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.support.procs import free_port

OS_USER = "postgres"


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found
    installs = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(installs[-1]) if installs else None


def unavailable_reason() -> str | None:
    """Why a private server cannot be run here (None: it can)."""
    if pg_bin("initdb") is None or pg_bin("pg_ctl") is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as another account"
    return None


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    """One private server: `url(db)`, `stop(mode)`, `start()`."""

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.data = base / "data"
        self.log = base / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        ctl = pg_bin("pg_ctl")
        assert ctl is not None
        subprocess.run(
            _as_owner([ctl, *args, "-D", str(self.data)]), check=True, capture_output=True, timeout=timeout
        )

    def start(self) -> None:
        self._ctl("start", "-w", "-l", str(self.log))

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no checkpoint, WAL replayed at the next start."""
        self._ctl("stop", "-w", "-m", mode)

    def running(self) -> bool:
        ctl = pg_bin("pg_ctl")
        assert ctl is not None
        done = subprocess.run(_as_owner([ctl, "status", "-D", str(self.data)]), capture_output=True)
        return done.returncode == 0

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """initdb + start (about 2 s); always stopped and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="errand-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, OS_USER)
    cluster = Cluster(base, free_port())
    initdb = pg_bin("initdb")
    assert initdb is not None
    try:
        subprocess.run(
            _as_owner(
                [
                    initdb,
                    "-D",
                    str(cluster.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\nmax_connections = 60\n"
            )
        started = time.monotonic()
        cluster.start()
        assert time.monotonic() - started < 60
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            with suppress(subprocess.SubprocessError, OSError):
                cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
