"""The attempt log is in the database: after a SIGKILL of `errand serve` and a restart, a failed
request's attempt and traceback are still there, and the attempt the kill cut short is recorded
as lost (taken over), followed by the attempt that completed it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import serving, write_formation

pytestmark = pytest.mark.slow

AGENTS = '''
import asyncio, os


def _parse(message):
    raise ValueError(f"no number in {message!r}")


async def broken(message, ctx):
    return _parse(message)


async def hang_once(message, ctx):
    """Attempt 1 marks that it runs, then hangs (the server is killed meanwhile); later ones end."""
    if ctx.attempt == 1:
        open(os.path.join(os.path.dirname(__file__), "hanging"), "w").close()
        await asyncio.sleep(120)
    return f"done on attempt {ctx.attempt}"
'''
KEY, ADMIN = "attempts-client-key", "attempts-admin-key"


def formation(tmp: Path) -> Path:
    return write_formation(
        tmp,
        {
            "name": "attempts",
            "keys": {"client": [KEY], "admin": [ADMIN]},
            "storage": {"url": "sqlite:///attempts.db"},
            "workers": {"concurrency": 4, "lease_seconds": 2, "poll_interval": 0.2},
            "workflow": {"task_timeout": 60, "retry": {"max_attempts": 3, "initial_delay": 0.1}},
            "agents": [
                {"id": "broken", "handler": "slow_agents:broken", "default": True},
                {"id": "hang", "handler": "slow_agents:hang_once"},
            ],
        },
        AGENTS,
    )


def attempts(base: str, request_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/v1/requests/{request_id}/attempts", headers={"X-Muxi-Admin-Key": ADMIN})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["attempts"]
    return found


def test_attempts_and_tracebacks_survive_sigkill_and_restart(tmp_path: Path) -> None:
    cfg = formation(tmp_path)
    headers = {"X-Muxi-Client-Key": KEY}
    with serving(cfg, tmp_path / "serve1.log") as (base, proc):
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            failed = c.post("/v1/chat", json={"message": "abc", "agent_id": "broken", "mode": "async"})
            hung = c.post("/v1/chat", json={"message": "x", "agent_id": "hang", "mode": "async"})
            failed_id, hung_id = failed.json()["request_id"], hung.json()["request_id"]
            doc = c.get(f"/v1/requests/{failed_id}", params={"wait": 20}).json()
            assert doc["status"] == "failed", doc
            deadline = time.monotonic() + 20
            while not (tmp_path / "hanging").exists():
                assert time.monotonic() < deadline, "the hanging attempt never started"
                time.sleep(0.02)
            before = attempts(base, failed_id)
        proc.kill()  # no shutdown code runs: the hanging attempt is cut short

    with serving(cfg, tmp_path / "serve2.log") as (base, _proc):
        with httpx.Client(base_url=base, headers=headers, timeout=70) as c:
            done = c.get(f"/v1/requests/{hung_id}", params={"wait": 60}).json()
            assert done["status"] == "completed", done
        after = attempts(base, failed_id)
        taken_over = attempts(base, hung_id)

    assert after == before
    [only] = after
    assert (only["outcome"], only["error"]["type"]) == ("failed", "ValueError")
    assert "in _parse" in only["traceback"] and "ValueError: no number in 'abc'" in only["traceback"]
    lost, completed = taken_over
    assert lost["outcome"] in ("worker_lost", "lease_lost") and lost["error"]["type"] == "WorkerLost"
    assert lost["ended_at"] is not None and lost["traceback"] is None
    assert (completed["attempt"], completed["outcome"]) == (2, "completed")
    assert completed["worker_id"] != lost["worker_id"]
