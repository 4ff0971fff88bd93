"""Sync handlers run in the worker's own threads (issue 9, item 4), over a real `errand serve`.

They used to share asyncio's default pool (min(32, cpus + 4) threads, 6 here): sleeping sync
agents made a webhook-URL submit wait for a thread, delayed other requests' webhooks, capped
`workers.concurrency: 64` at 6, and a timed-out handler kept running while its retry started.

Each handler call appends `start|end <request id> <attempt> <time.time()>` to runs.log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import serving, write_formation
from tests.support.server import wait_for
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.slow

KEY = "threads-client-key"
HEADERS = {"X-Muxi-Client-Key": KEY}

AGENTS = r'''
import os, time

_LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")


def _note(kind, ctx):
    with open(_LOG, "a") as f:
        f.write(f"{kind} {ctx.request_id} {ctx.attempt} {time.time()}\n")


def sleeper(message, ctx):
    """Sleeps `message` seconds without looking at ctx.cancelled (as blocking code does)."""
    _note("start", ctx)
    time.sleep(float(message))
    _note("end", ctx)
    return "slept"


async def quick(message, ctx):
    return "quick"
'''


def formation(tmp: Path, concurrency: int, task_timeout: float) -> Path:
    return write_formation(
        tmp,
        {
            "name": "threads",
            "keys": {"client": [KEY], "admin": ["threads-admin-key"]},
            "storage": {"url": "sqlite:///threads.db"},
            "async": {"webhook_allow_hosts": ["localhost"], "webhook_secret": "s3cret"},
            "workers": {"concurrency": concurrency, "lease_seconds": 5, "poll_interval": 0.2},
            "workflow": {
                "task_timeout": task_timeout,
                "retry": {"max_attempts": 2, "initial_delay": 0.05, "max_delay": 0.05},
            },
            "agents": [
                {"id": "sleeper", "handler": "slow_agents:sleeper"},
                {"id": "quick", "handler": "slow_agents:quick"},
            ],
        },
        AGENTS,
    )


def calls(tmp: Path) -> list[tuple[str, str, int, float]]:
    """(kind, request id, attempt, time) of each handler start and end, in order."""
    log = tmp / "runs.log"
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [(k, rid, int(a), float(t)) for k, rid, a, t in rows]


def submit(c: httpx.Client, agent: str, message: str, **extra: Any) -> str:
    r = c.post("/v1/chat", json={"message": message, "agent_id": agent, "mode": "async", **extra})
    assert r.status_code == 202, r.text
    rid: str = r.json()["request_id"]
    return rid


def stray_threads(c: httpx.Client) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("errand_stray_attempt_threads "):
            return float(line.split()[1])
    raise AssertionError("no errand_stray_attempt_threads metric")


def test_sleeping_sync_agents_starve_nothing(tmp_path: Path) -> None:
    cfg = formation(tmp_path, concurrency=64, task_timeout=30)
    with receiving() as receiver, serving(cfg, tmp_path / "serve.log") as (base, _):
        hook = f"http://localhost:{receiver.port}/hook"
        with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as c:
            sleepers = [submit(c, "sleeper", "4") for _ in range(56)]
            deadline = time.monotonic() + 5
            while len(calls(tmp_path)) < 8 and time.monotonic() < deadline:
                time.sleep(0.02)  # more sleepers than asyncio's default pool has threads
            began = time.monotonic()
            other = submit(c, "quick", "hi", webhook_url=hook)  # the URL check resolves localhost
            answered = time.monotonic() - began
            hit = receiver.wait_for(1, timeout=30)[0]
            delivered = time.monotonic() - began
            assert answered < 1.0, f"a webhook-URL submit took {answered:.2f}s behind sync agents"
            assert hit.headers["webhook-id"] and other.encode() in hit.body
            assert delivered < 2.0, f"another request's webhook arrived {delivered:.2f}s late"
            sleepers += [submit(c, "sleeper", "4") for _ in range(8)]  # 64 in all
            deadline = time.monotonic() + 5
            while len(calls(tmp_path)) < 64 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [k for k, *_ in calls(tmp_path)] == ["start"] * 64  # 64 at once, none waited
            for rid in sleepers:
                assert wait_for(c, rid, 15)["status"] == "completed"  # task_timeout held


def test_a_stray_thread_holds_its_slot_and_its_retry(tmp_path: Path) -> None:
    cfg = formation(tmp_path, concurrency=1, task_timeout=1.0)
    with serving(cfg, tmp_path / "serve.log") as (base, proc):
        with httpx.Client(base_url=base, headers=HEADERS, timeout=15) as c:
            # times out at 1.0 s, returns at 1.5 s (0.5 s over: within the grace of one more
            # task_timeout): the retry waits for it; then attempt 2 does the same and fails
            stubborn = submit(c, "sleeper", "1.5")
            seen: set[tuple[str, float]] = set()
            while (doc := c.get(f"/v1/requests/{stubborn}").json())["status"] in ("pending", "processing"):
                if "thread still running" in ((doc["progress"] or {}).get("message") or ""):
                    seen.add((doc["status"], stray_threads(c)))
                time.sleep(0.03)
            assert doc["status"] == "failed" and doc["attempts"] == 2, doc
            assert doc["error"]["type"] == "TaskTimeout"
            runs = [(kind, a, t) for kind, rid, a, t in calls(tmp_path) if rid == stubborn]
            assert [(k, a) for k, a, _ in runs] == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
            assert runs[2][2] >= runs[1][2], "attempt 2 started while attempt 1's thread still ran"
            assert ("processing", 1.0) in seen  # the state said so while it was held

            # still running a task_timeout after its timeout: failed for good, never retried;
            # and with concurrency 1, the next request waits until the thread is back
            forever = submit(c, "sleeper", "3.5")
            doc = wait_for(c, forever, 15)
            assert doc["status"] == "failed" and doc["attempts"] == 1, doc
            assert doc["error"]["type"] == "PermanentError" and "not retried" in doc["error"]["message"]
            after = submit(c, "sleeper", "0")
            assert wait_for(c, after, 15)["status"] == "completed"

            # a cancelled handler's thread keeps the slot too
            cancelled = submit(c, "sleeper", "1.5")
            while not any(rid == cancelled for _, rid, _, _ in calls(tmp_path)):
                time.sleep(0.02)
            assert c.delete(f"/v1/requests/{cancelled}").json()["status"] == "cancelled"
            last = submit(c, "sleeper", "0")
            assert wait_for(c, last, 15)["status"] == "completed"
        assert "still running" in proc.log.read_text()
    by_id: dict[str, dict[str, float]] = {}
    for kind, rid, _, t in calls(tmp_path):
        by_id.setdefault(rid, {})[kind] = t
    assert [rid for kind, rid, _, _ in calls(tmp_path) if kind == "start"].count(forever) == 1
    assert by_id[after]["start"] >= by_id[forever]["end"], "a slot was reused while its thread ran"
    assert by_id[last]["start"] >= by_id[cancelled]["end"], "a slot was reused while its thread ran"
