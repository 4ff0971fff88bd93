"""api/connections.py: the connection cap fitted to the open-file limit, and raising that limit."""

from __future__ import annotations

import subprocess
import sys

from errand.api.connections import FD_SPARE, ConnectionLimits
from errand.config import build_config

KEYS = {"keys": {"client": ["client-key-1"]}}


def test_limits_come_from_the_server_settings() -> None:
    cfg = build_config(
        {
            **KEYS,
            "server": {
                "max_connections": 300,
                "keepalive_timeout_seconds": 2,
                "header_timeout_seconds": 3.5,
                "max_header_bytes": 8192,
            },
        }
    )
    assert ConnectionLimits.from_config(cfg, fd_limit=65536) == ConnectionLimits(300, 2.0, 3.5, 8192)


def test_the_cap_is_lowered_to_fit_the_open_file_limit() -> None:
    cfg = build_config(KEYS)
    assert cfg.server.max_connections == 4096
    limits = ConnectionLimits.from_config(cfg, fd_limit=1024)
    # room is left for the database pool and the webhook connections
    assert limits.max_connections == 1024 - FD_SPARE - cfg.storage.pool_size - cfg.async_.webhook_concurrency


def test_the_soft_open_file_limit_is_raised_towards_the_hard_one() -> None:
    code = (
        "import resource\n"
        "from errand.api.connections import raise_fd_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "got = raise_fd_limit(ceiling=4096)\n"
        "want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)\n"
        "assert got == want == resource.getrlimit(resource.RLIMIT_NOFILE)[0], (got, want)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
