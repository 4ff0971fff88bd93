#!/usr/bin/env python3
"""Webhook delivery benchmark: 1,000 requests with a webhook to a receiver on 127.0.0.1.

    python bench/webhook_bench.py [--count 1000] [--scenario steady|backlog|both] [--out results.jsonl]

Two scenarios (both by default), each with a fresh database and the `noop` bench agent:
  steady   one `errand serve` (workers and dispatcher in it) takes `--count` async chats, each
           with `webhook_url` pointing at a receiver in this process, and delivers as they end;
  backlog  `errand serve --no-workers` takes them all first; then one `errand worker` (worker +
           dispatcher) starts, so results and webhooks come due in a burst: the dispatcher's
           own ceiling rather than the submit rate.
The receiver is a bare asyncio HTTP/1.1 server on its own thread and event loop, so the client
submitting requests never delays a receive timestamp; it answers 200 at once and checks every
signature (errand.webhooks.verify) after taking the time.

Figures, one JSON line per scenario:
  deliveries_per_s    received / (last receive - first receive): the dispatcher's rate while
                      requests keep completing (it is not idle-waiting for work in that span);
  end_to_end_per_s    received / (last receive - first submit; backlog: - worker start);
  latency p50/p99/max completion -> delivery: receive time minus the body's `completed_at`
                      (both time.time() on this host), i.e. outbox wake-up + claim + sign +
                      connect + POST;
  duplicates, missing, bad_signatures: must all be 0.

Uses the helpers of bench/errand_bench.py (server processes, JSON lines, percentiles).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import errand_bench as eb
import yaml
from loadgen import post_many

from errand.webhooks import verify

SECRET = "bench-webhook-secret"


@dataclass
class Received:
    request_id: str
    webhook_id: str
    at: float
    completed_at: float
    signed: bool


@dataclass
class Receiver:
    """A minimal HTTP/1.1 receiver (Content-Length bodies, answers 200) on its own loop/thread."""

    got: list[Received] = field(default_factory=list)
    port: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    expected: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                loop.run_until_complete(server.wait_closed())
                loop.close()

        self._thread = threading.Thread(target=run, name="receiver", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            at = time.time()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            writer.close()
        doc = json.loads(body)
        signed = verify(body, headers, SECRET)
        self.got.append(
            Received(doc["request_id"], headers.get("webhook-id", ""), at, float(doc["completed_at"]), signed)
        )
        if len(self.got) >= self.expected:
            self.done.set()


def formation(b: eb.Bench) -> Path:
    data = {
        "name": "webhook-bench",
        "keys": {"client": [eb.KEY], "admin": [eb.ADMIN]},
        "storage": {"url": b.storage_url()},
        "async": {"mode": "async", "webhook_secret": SECRET, "webhook_allow_hosts": ["127.0.0.1"]},
        "workers": {"concurrency": 64, "lease_seconds": 30},
        "agents": [{"id": "noop", "handler": "bench_agents:noop"}],
    }
    path = b.dir / "formation-webhooks.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def submit(url: str, hook: str, n: int, conns: int) -> tuple[int, list[float]]:
    """n async chats with a webhook over `conns` keep-alive connections: (accepted, latencies).
    Uses the lean raw HTTP client (bench/loadgen.py) so the client does not cap the rate."""

    def make(tid: int) -> bytes:
        msg = json.dumps({"tid": tid, "t_enq": time.time()})
        return json.dumps({"message": msg, "mode": "async", "webhook_url": hook}).encode()

    replies = await post_many(url, n, conns, "/v1/chat", make, {"X-Muxi-Client-Key": eb.KEY})
    ok = [r for r in replies if r.status == 202]
    return len(ok), [r.latency for r in ok]


def run(b: eb.Bench, n: int, conns: int, scenario: str) -> None:
    """steady: one `errand serve` runs everything while requests arrive. backlog: `serve
    --no-workers` takes all n first, then one `errand worker` (worker + dispatcher) starts, so
    every result and its webhook come due in a burst: the dispatcher's own ceiling."""
    receiver = Receiver(expected=n)
    receiver.start()
    cfg = formation(b)
    try:
        with eb.running(b.serve(cfg, *(("--no-workers",) if scenario == "backlog" else ()))) as s:
            t0 = time.time()
            accepted, submit_lat = asyncio.run(submit(s.url, receiver.url, n, conns))
            t_submitted = time.time()
            worker = b.worker(cfg) if scenario == "backlog" else None
            t_start = time.time() if worker is not None else t0
            try:
                receiver.done.wait(300)
                time.sleep(1.0)  # anything arriving late (a duplicate) is counted too
            finally:
                if worker is not None:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(30)
    finally:
        receiver.stop()
    got = list(receiver.got)
    ids = {g.request_id for g in got}
    first, last = min(g.at for g in got), max(g.at for g in got)
    latency = [g.at - g.completed_at for g in got]
    eb.emit(
        {
            "bench": "webhooks",
            "scenario": scenario,
            "system": "errand",
            "storage": b.storage,
            "requests": n,
            "accepted": accepted,
            "received": len(got),
            "duplicates": len(got) - len(ids),
            "missing": accepted - len(ids),
            "bad_signatures": sum(not g.signed for g in got),
            "submit_s": round(t_submitted - t0, 2),
            "submit_p50_ms": round(eb.pct(submit_lat, 50) * 1000, 2),
            "deliveries_per_s": round(len(got) / max(last - first, 1e-9), 1),
            "end_to_end_per_s": round(len(got) / max(last - t_start, 1e-9), 1),
            "latency_p50_ms": round(eb.pct(latency, 50) * 1000, 1),
            "latency_p99_ms": round(eb.pct(latency, 99) * 1000, 1),
            "latency_max_ms": round(max(latency) * 1000, 1),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--scenario", choices=["steady", "backlog", "both"], default="both")
    ap.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    eb.OUT = a.out
    scratch = Path(os.environ.get("BENCH_SCRATCH", tempfile.gettempdir()))
    b = eb.Bench(a.storage, a.pg_dsn, scratch)
    eb.log("scratch", b.dir)
    for scenario in ("steady", "backlog") if a.scenario == "both" else (a.scenario,):
        run(b, a.count, a.conns, scenario)


if __name__ == "__main__":
    main()
