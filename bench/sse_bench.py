#!/usr/bin/env python3
"""Event-stream benchmarks: throughput of one stream, and the cost of many open streams.

    python bench/sse_bench.py all|throughput|streams [--streams 1000] [--out results.jsonl]

throughput  One `errand serve` (workers on, SQLite). A `deltas` agent emits N content deltas as
            fast as it can (a model streaming tokens) and a `ticks` agent N progress reports;
            each is read through `POST /v1/chat` with `stream: true`. Reports SSE messages/s
            and deltas/s from the first to the last message, and checks that the text read
            equals the text emitted (adjacent deltas may be merged into one event; none lost).
streams     `--streams` requests that stay running (the `park` agent), one open SSE stream on
            each. Reports the server's RSS before and with the streams, per-stream cost, the
            server's CPU while all streams sit idle (SQLite: each stream re-checks its request
            every `workers.poll_interval`), and how long until every stream has received the
            terminal event after all requests are cancelled.

Servers are real `errand` subprocesses on loopback; figures are JSON lines (and appended to --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import errand_bench as eb
import httpx
import yaml

KEY = eb.KEY
CLK_TCK = os.sysconf("SC_CLK_TCK")


def formation(folder: Path, *, concurrency: int, sync: str) -> Path:
    data = {
        "name": "ssebench",
        "keys": {"client": [KEY], "admin": [eb.ADMIN]},
        "storage": {"url": f"sqlite:///{folder}/sse-{time.monotonic_ns()}.db", "sqlite_synchronous": sync},
        "async": {"mode": "async"},
        "workflow": {"task_timeout": 600},
        "workers": {"concurrency": concurrency, "lease_seconds": 30},
        "agents": [{"id": name, "handler": f"live_agents:{name}"} for name in ("deltas", "ticks", "park")],
    }
    path = folder / f"formation-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def serve(folder: Path, cfg: Path) -> eb.Server:
    env = {**os.environ, "PYTHONPATH": f"{eb.HERE}:{os.environ.get('PYTHONPATH', '')}"}
    server = eb.Server(
        [eb.ERRAND, "serve", "--config", str(cfg), "--port", "{port}"], env, folder / "serve.log"
    )
    server.wait_ready()
    return server


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


# ----------------------------------------------------------------------------- throughput


async def one_stream(url: str, agent: str, n: int) -> dict[str, Any]:
    """Submit with stream: true and read the whole stream, timing the messages."""
    body = {"message": "go", "agent_id": agent, "stream": True, "metadata": {"n": n}}
    messages = 0
    text: list[str] = []
    first = last = 0.0
    event = ""
    async with httpx.AsyncClient(base_url=url, headers=eb.headers(), timeout=120) as c:
        t0 = time.perf_counter()
        async with c.stream("POST", "/v1/chat", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    now = time.perf_counter()
                    first = first or now
                    last = now
                    messages += 1
                    if event == "content":
                        text.append(json.loads(line[6:])["text"])
    seconds = last - first
    record: dict[str, Any] = {
        "bench": "sse_throughput",
        "agent": agent,
        "emitted": n,
        "messages": messages,
        "seconds": round(seconds, 3),
        "messages_per_s": round(messages / seconds) if seconds else None,
        "open_to_close_s": round(last - t0, 3),
    }
    if agent == "deltas":
        record["deltas_per_s"] = round(n / seconds) if seconds else None
        record["text_intact"] = "".join(text) == "".join(f"{i} " for i in range(n))
    return record


async def fan_out(server: eb.Server, clients: int, n: int) -> dict[str, Any]:
    """`clients` streams on one `ticks` request of n progress events, opened as it starts."""
    async with httpx.AsyncClient(base_url=server.url, headers=eb.headers(), timeout=120) as c:
        body = {"message": "go", "agent_id": "ticks", "mode": "async", "metadata": {"n": n}}
        t0 = time.perf_counter()
        rid = (await c.post("/v1/chat", json=body)).json()["request_id"]
        closed: dict[str, float] = {}
        counts: list[int] = []

        async def one(i: int) -> None:
            counts.append(await raw_stream(server.port, rid, asyncio.Event(), closed, key=str(i)))

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(clients))), 300)
        wall = max(closed.values()) - t0
    return {
        "bench": "sse_fan_out",
        "clients": clients,
        "events": n + 3,
        "identical_counts": len(set(counts)) == 1 and counts[0] == n + 3,
        "submit_to_last_close_s": round(wall, 3),
        "deliveries_per_s": round(sum(counts) / wall),
    }


def throughput(folder: Path, sync: str, n_deltas: int, n_ticks: int) -> None:
    server = serve(folder, formation(folder, concurrency=8, sync=sync))
    with eb.running(server):
        asyncio.run(one_stream(server.url, "ticks", 50))  # warm-up
        for agent, n in (("deltas", n_deltas), ("ticks", n_ticks)):
            eb.emit({**asyncio.run(one_stream(server.url, agent, n)), "sqlite_synchronous": sync})
        eb.emit({**asyncio.run(fan_out(server, 200, n_ticks)), "sqlite_synchronous": sync})


# ----------------------------------------------------------------------------- many streams


async def hold_streams(server: eb.Server, n: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=eb.headers(), timeout=300) as c:
        ids = await submit_parked(c, n)
        await until_running(c, n)
        rss_before = eb.rss_tree_mb(server.p.pid)
        started = {rid: asyncio.Event() for rid in ids}
        closed: dict[str, float] = {}
        readers = [asyncio.create_task(raw_stream(server.port, rid, started[rid], closed)) for rid in ids]
        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 120)
        open_s = time.perf_counter() - t0
        await asyncio.sleep(2)
        rss_with = eb.rss_tree_mb(server.p.pid)
        cpu0, w0 = cpu_seconds(server.p.pid), time.perf_counter()
        await asyncio.sleep(10)
        idle_cpu = (cpu_seconds(server.p.pid) - cpu0) / (time.perf_counter() - w0)
        t_cancel = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def cancel(rid: str) -> None:
            async with sem:
                (await c.delete(f"/v1/requests/{rid}")).raise_for_status()

        await asyncio.gather(*(cancel(rid) for rid in ids))
        cancels_s = time.perf_counter() - t_cancel
        await asyncio.wait_for(asyncio.gather(*readers), 120)
        all_closed_s = max(closed.values()) - t_cancel
    return {
        "bench": "sse_streams",
        "streams": n,
        "rss_before_mb": round(rss_before, 1),
        "rss_with_streams_mb": round(rss_with, 1),
        "kb_per_stream": round((rss_with - rss_before) * 1024 / n, 1),
        "open_all_s": round(open_s, 2),
        "idle_server_cpu_pct": round(idle_cpu * 100, 1),
        "cancel_all_s": round(cancels_s, 2),
        "cancel_all_to_last_stream_closed_s": round(all_closed_s, 2),
        "streams_closed": len(closed),
    }


async def submit_parked(c: httpx.AsyncClient, n: int) -> list[str]:
    sem = asyncio.Semaphore(64)

    async def one() -> str:
        async with sem:
            r = await c.post("/v1/chat", json={"message": "wait", "agent_id": "park", "mode": "async"})
            r.raise_for_status()
            request_id: str = r.json()["request_id"]
            return request_id

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def until_running(c: httpx.AsyncClient, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = (await c.get("/metrics")).text
        for line in metrics.splitlines():
            if line.startswith("errand_worker_running_attempts ") and float(line.split()[1]) >= n:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{n} requests did not all start")


async def raw_stream(
    port: int, rid: str, started: asyncio.Event, closed: dict[str, float], key: str | None = None
) -> int:
    """One SSE stream over a bare socket (an httpx pool of 1,000 busy connections costs the
    client more CPU than the server spends): `Connection: close`, so EOF ends the stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /v1/requests/{rid}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Muxi-Client-Key: {KEY}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream of {rid}: {status!r}")
    messages = 0
    while line := await reader.readline():
        if line.startswith(b"id: "):
            messages += 1
        elif line.startswith(b"event: started"):
            started.set()
    closed[key or rid] = time.perf_counter()
    writer.close()
    return messages


def streams(folder: Path, n: int) -> None:
    server = serve(folder, formation(folder, concurrency=n + 100, sync="normal"))
    with eb.running(server):
        eb.emit(asyncio.run(hold_streams(server, n)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", choices=["all", "throughput", "streams"])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--deltas", type=int, default=20000)
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    eb.OUT = args.out
    folder = Path(tempfile.mkdtemp(prefix="errand-sse-bench-"))
    eb.log("scratch folder", folder)
    if args.which in ("all", "throughput"):
        for sync in ("full", "normal"):
            throughput(folder, sync, args.deltas, args.ticks)
    if args.which in ("all", "streams"):
        streams(folder, args.streams)


if __name__ == "__main__":
    sys.exit(main())
