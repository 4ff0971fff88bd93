#!/usr/bin/env python3
"""HTTP async submit with ONE client for every server: errand, LangGraph's dev server, MUXI.

The peers' harness measures LangGraph (E1) and MUXI with an httpx client; one httpx pool
shared by 32 concurrent requests tops out near 300 requests/s on this machine, so those
figures partly measure the client. Here each server gets the same lean raw HTTP/1.1 client
(bench/loadgen.py), 32 keep-alive connections, 10 s:

    python bench/http_submit_lean.py [--seconds 10] [--conns 32] [--out FILE]

errand: POST /v1/chat {"mode": "async"} to `errand serve` (SQLite, workers on).
LangGraph: POST /threads/{uuid}/runs (if_not_exists=create) to `langgraph dev`, the peers'
no-op graph, from the peers' venv ($BENCH_SCRATCH/venvs/langgraph; run
../shared/bench-peers/run_peers.sh setup langgraph first). Each run is counted when accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import errand_bench as eb
import httpx
from loadgen import post_for

PEERS = Path(os.environ.get("PEERS_DIR", eb.ROOT.parent / "shared" / "bench-peers"))
SCRATCH = Path(os.environ.get("BENCH_SCRATCH", "/tmp/errand-bench-peers"))


def summarize(replies: list[Any], wall: float, ok: set[int]) -> dict[str, float]:
    good = [r for r in replies if r.status in ok]
    lat = [r.latency * 1000 for r in good]
    return {
        "per_s": round(len(good) / wall, 1),
        "p50_ms": round(eb.pct(lat, 50), 2),
        "p99_ms": round(eb.pct(lat, 99), 2),
        "accepted": len(good),
        "other": len(replies) - len(good),
    }


def errand_rate(b: eb.Bench, seconds: float, conns: int) -> None:
    with eb.running(b.serve(b.formation(agent="noop"))) as s:
        replies, wall = asyncio.run(
            post_for(s.url, seconds, conns, "/v1/chat", lambda i: eb.body(i), {"X-Muxi-Client-Key": eb.KEY})
        )
    eb.emit(
        {
            "bench": "submit-lean",
            "system": "errand serve (workers on)",
            "storage": b.storage,
            **summarize(replies, wall, {202}),
        }
    )


def langgraph_rate(seconds: float, conns: int) -> None:
    venv = SCRATCH / "venvs" / "langgraph" / "bin"
    if not (venv / "langgraph").exists():
        eb.log("langgraph venv not found; run ../shared/bench-peers/run_peers.sh setup langgraph")
        return
    wd = Path(SCRATCH / "run" / "langgraph_lean")
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True)
    for f in (PEERS / "peer_apps" / "langgraph_app").iterdir():
        if f.is_file():
            shutil.copy(f, wd / f.name)
    shutil.copy(PEERS / "peer_apps" / "mark.py", wd / "mark.py")
    port = eb.free_port()
    env = {
        **os.environ,
        "BENCH_MARK_FILE": str(wd / "marks.txt"),
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "LANGSMITH_API_KEY": "",
        "LANGGRAPH_METRICS_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(wd),
    }
    cmd = [
        str(venv / "langgraph"),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n-jobs-per-worker",
        "10",
        "--server-log-level",
        "WARNING",
        "--config",
        str(wd / "langgraph.json"),
    ]
    with (wd / "server.log").open("ab") as log:
        p = subprocess.Popen(
            cmd, env=env, cwd=wd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                if httpx.get(base + "/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        graph = json.loads((wd / "langgraph.json").read_text())["graphs"]
        name = next(iter(graph))

        def make(i: int) -> bytes:
            inp = {"tid": i, "t_enq": time.time()}
            return json.dumps({"assistant_id": name, "input": inp, "if_not_exists": "create"}).encode()

        replies, wall = asyncio.run(
            post_for(base, seconds, conns, lambda i: f"/threads/{uuid.uuid4()}/runs", make, {})
        )
        eb.emit(
            {
                "bench": "submit-lean",
                "system": "LangGraph dev (n10)",
                "storage": "in-memory",
                **summarize(replies, wall, {200, 201, 202}),
            }
        )
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    eb.OUT = a.out
    b = eb.Bench("sqlite", "", Path(os.environ.get("TMPDIR", "/tmp")))
    errand_rate(b, a.seconds, a.conns)
    langgraph_rate(a.seconds, a.conns)
    shutil.rmtree(b.dir, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
