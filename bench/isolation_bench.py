"""What `isolation: process` costs per attempt, against inline in the same run.

A no-op agent (errand.agents.builtin:echo) runs N requests through the real engine on a real
SQLite file (submit, then Worker.run_until_idle: claim, run, record), once inline and once with
`isolation: process`, sequentially (concurrency 1) and concurrently (concurrency C). The
process variant pays one Python start and import of the handler per attempt. Prints one JSON line
per case (seconds, attempts/s, ms per attempt) and one per mode with the process/inline ratio.

    .venv/bin/python bench/isolation_bench.py [--n 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from errand.agents.registry import AgentRegistry
from errand.clock import SystemClock, new_request_id
from errand.config import build_config
from errand.engine.settings import WorkerSettings
from errand.engine.worker import Worker
from errand.models import NewRequest, Status
from errand.store import open_store


async def run_case(folder: Path, isolation: str, n: int, concurrency: int) -> dict[str, object]:
    config = build_config(
        {
            "keys": {"client": ["bench-client-key"]},
            "agents": [{"id": "noop", "handler": "errand.agents.builtin:echo", "isolation": isolation}],
        },
        env={},
    )
    agents = AgentRegistry.from_config(config)
    url = f"sqlite:///{folder / f'{isolation}-{concurrency}.db'}"
    store = await open_store(url, clock=SystemClock(), synchronous="normal", poll_interval=0.05)
    try:
        ids = []
        for i in range(n):
            new = NewRequest(id=new_request_id(), owner="bench", user_id="u", message=f"m{i}", agent="noop")
            await store.submit(new)
            ids.append(new.id)
        settings = WorkerSettings(concurrency=concurrency, poll_interval=0.05, task_timeout=60.0)
        worker = Worker(store, agents, settings, clock=SystemClock())
        started = time.perf_counter()
        await worker.run_until_idle()
        seconds = time.perf_counter() - started
        done = sum([(await store.get(rid)).status is Status.COMPLETED for rid in ids])
    finally:
        await store.close()
    return {
        "case": f"{isolation} c={concurrency}",
        "isolation": isolation,
        "concurrency": concurrency,
        "n": n,
        "completed": done,
        "seconds": round(seconds, 3),
        "attempts_per_s": round(n / seconds, 1),
        "ms_per_attempt": round(seconds * 1000 / n, 2),
    }


async def main(n: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="errand-iso-bench-") as tmp:
        for c in (1, concurrency):
            figures: dict[str, dict[str, float]] = {}
            for isolation in ("inline", "process"):
                case = await run_case(Path(tmp), isolation, n, c)
                print(json.dumps(case), flush=True)
                figures[isolation] = {
                    "seconds": float(str(case["seconds"])),
                    "ms": float(str(case["ms_per_attempt"])),
                }
            ratio = figures["process"]["seconds"] / figures["inline"]["seconds"]
            extra = figures["process"]["ms"] - figures["inline"]["ms"]
            print(
                json.dumps(
                    {
                        "case": f"ratio c={c}",
                        "process_over_inline": round(ratio, 1),
                        "extra_ms_per_attempt": round(extra, 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency))
