"""`errand serve --no-workers` + `errand worker` on one SQLite file: the worker picks a request up
at once and a long-poll on the API returns as soon as the worker finishes. The poll interval is
5 s, so only the cross-process wake-ups (`errand.store.sqlite.notify`) can make this fast."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import Proc, serving, write_formation

pytestmark = pytest.mark.slow

AGENTS = '''
import asyncio, os, time

async def quick(message, ctx):
    """Logs when it starts and ends (wall clock) to runs.log; takes 0.3 s."""
    log = os.path.join(os.path.dirname(__file__), "runs.log")
    with open(log, "a") as f:
        f.write(f"start {ctx.request_id} {time.time()}\\n")
    await asyncio.sleep(0.3)
    with open(log, "a") as f:
        f.write(f"end {ctx.request_id} {time.time()}\\n")
    return f"done {message}"
'''

KEY = "split-client-key"


def marks(tmp: Path, request_id: str) -> dict[str, float]:
    lines = (tmp / "runs.log").read_text().splitlines() if (tmp / "runs.log").exists() else []
    return {kind: float(ts) for kind, rid, ts in (line.split() for line in lines) if rid == request_id}


def test_api_and_worker_processes_wake_each_other(tmp_path: Path) -> None:
    cfg = write_formation(
        tmp_path,
        {
            "name": "split",
            "keys": {"client": [KEY], "admin": ["split-admin-key"]},
            "storage": {"url": "sqlite:///split.db"},
            "workers": {"concurrency": 4, "poll_interval": 5},
            "agents": [{"id": "quick", "handler": "slow_agents:quick"}],
        },
        AGENTS,
    )
    worker = Proc(["worker", "--config", str(cfg)], tmp_path / "worker.log")
    with serving(cfg, tmp_path / "serve.log", "--no-workers") as (base, _proc):
        worker.start()
        try:
            with httpx.Client(base_url=base, headers={"X-Muxi-Client-Key": KEY}, timeout=30) as c:
                warm = c.post("/v1/chat", json={"message": "warm-up", "mode": "async"}).json()["request_id"]
                assert c.get(f"/v1/requests/{warm}", params={"wait": 20}).json()["status"] == "completed"
                pickups, returns = [], []
                for n in range(5):
                    sent = time.time()
                    r = c.post("/v1/chat", json={"message": f"job {n}", "mode": "async"})
                    assert r.status_code == 202, r.text
                    rid = r.json()["request_id"]
                    doc = c.get(f"/v1/requests/{rid}", params={"wait": 10}).json()
                    returned = time.time()
                    assert doc["status"] == "completed", doc
                    seen = marks(tmp_path, rid)
                    pickups.append(seen["start"] - sent)
                    returns.append(returned - seen["end"])
        finally:
            worker.stop()
    ms = [[round(x * 1000, 1) for x in xs] for xs in (pickups, returns)]
    print(f"pickup ms {ms[0]}; long-poll return after the end ms {ms[1]}")
    assert max(pickups) < 0.3, (pickups, worker.tail())
    assert max(returns) < 0.3, returns
