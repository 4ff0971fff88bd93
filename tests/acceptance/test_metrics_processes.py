"""/metrics of real `errand` processes on one PostgreSQL database: `serve --no-workers` and
`errand worker` (with its metrics port) show the same queue gauges, equal to the API's counts;
per-process gauges say which process; a locked table makes the scrape stale, never hung."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import Proc, free_port, serving, write_formation

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

AGENTS = '''
import asyncio, os

async def hold(message, ctx):
    """Runs until the file `release` (beside this module) exists."""
    gate = os.path.join(os.path.dirname(__file__), "release")
    while not os.path.exists(gate):
        await asyncio.sleep(0.02)
    return "released"

def echo(message, ctx):
    return message
'''
KEY, ADMIN = "metrics-client-key", "metrics-admin-key"


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{base}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def total(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and labels.items() <= dict(ls).items())


def queue(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[tuple[str, ...], float]:
    return {ls: v for (n, ls), v in found.items() if n == "errand_queue_depth"}


def test_api_and_worker_processes_read_the_same_queue(tmp_path: Path, pg_fresh_url: str) -> None:
    metrics_port = free_port()
    cfg = write_formation(
        tmp_path,
        {
            "name": "metrics",
            "keys": {"client": [KEY], "admin": [ADMIN]},
            "storage": {"url": pg_fresh_url},
            "async": {"threshold_seconds": 0},
            "workers": {"concurrency": 2, "poll_interval": 0.2},
            "metrics": {"cache_seconds": 0, "timeout_seconds": 0.5, "port": metrics_port},
            "agents": [
                {"id": "hold", "handler": "slow_agents:hold"},
                {"id": "echo", "handler": "slow_agents:echo", "default": True},
            ],
        },
        AGENTS,
    )
    worker = Proc(["worker", "--config", str(cfg)], tmp_path / "worker.log")
    worker_base = f"http://127.0.0.1:{metrics_port}"
    with serving(cfg, tmp_path / "serve.log", "--no-workers") as (api_base, _api):
        worker.start()
        try:
            headers = {"X-Muxi-Admin-Key": ADMIN}
            with httpx.Client(base_url=api_base, headers=headers, timeout=30) as c:
                ids = [
                    c.post("/v1/chat", json={"message": "m", "agent_id": a}).json()["request_id"]
                    for a in ("hold", "hold", "hold", "echo")
                ]

                def listed(status: str) -> list[dict[str, str]]:
                    page: list[dict[str, str]] = c.get(
                        "/v1/requests", params={"status": status, "limit": 100}
                    ).json()["requests"]
                    return page

                deadline = time.monotonic() + 20
                while len(listed("processing")) < 2:
                    assert time.monotonic() < deadline, worker.tail()
                    time.sleep(0.05)
                pending, processing = listed("pending"), listed("processing")
                from_api, from_worker = samples(api_base), samples(worker_base)
                assert queue(from_api) == queue(from_worker)  # one truth, whichever is scraped
                for status, rows in (("pending", pending), ("processing", processing)):
                    for agent in ("hold", "echo"):
                        n = sum(1 for r in rows if r["agent"] == agent)
                        assert total(from_api, "errand_queue_depth", status=status, agent=agent) == n
                assert total(from_api, "errand_queue_depth") == 4
                # per-process: the worker runs the two held attempts, the API none
                assert total(from_worker, "errand_in_flight", agent="hold") == 2
                assert total(from_api, "errand_in_flight") == 0
                assert total(from_worker, "errand_process_info", role="worker") == 1
                assert total(from_api, "errand_process_info", role="api") == 1
                assert total(from_api, "errand_process_info", role="worker") == 0

                stale = asyncio.run(_scrape_while_locked(pg_fresh_url, api_base))
                assert stale["errand_metrics_stale"] == 1
                assert stale["errand_queue_depth"] == 4  # the last values, not zeros
                assert stale["seconds"] < 3

                (tmp_path / "release").touch()
                for rid in ids:
                    doc = c.get(f"/v1/requests/{rid}", params={"wait": 20}).json()
                    assert doc["status"] == "completed", doc
                after = samples(api_base)
                assert total(after, "errand_queue_depth") == 0
                assert total(after, "errand_metrics_stale") == 0
                assert total(samples(worker_base), "errand_requests_total", status="completed") == 4
        finally:
            (tmp_path / "release").touch()
            worker.stop()


async def _scrape_while_locked(url: str, api_base: str) -> dict[str, float]:
    """Hold an ACCESS EXCLUSIVE lock on requests (every read of it waits) while scraping."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(f"{api_base}/metrics")
            seconds = time.monotonic() - started
    finally:
        await conn.close()
    assert r.status_code == 200
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    return {
        "errand_metrics_stale": total(found, "errand_metrics_stale"),
        "errand_queue_depth": total(found, "errand_queue_depth"),
        "seconds": seconds,
    }
