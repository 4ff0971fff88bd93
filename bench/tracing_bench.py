"""What tracing costs: submit throughput and pickup latency with tracing off and on, same run.

Each case is a real `errand serve` process (workers on, SQLite `normal`, the built-in echo agent)
driven over loopback by bench/loadgen.py:
  off               tracing off (no OTEL_* set: no opentelemetry module is even imported)
  off+traceparent   tracing off, every submit carries a W3C traceparent (stored with the request)
  on                OTEL_EXPORTER_OTLP_ENDPOINT set: the SDK's batch processor exports every span
                    (submit, queue wait, attempt) over OTLP/HTTP to a receiver here that discards them
The cases run in interleaved rounds (off, off+traceparent, on, off, ...) so a busy machine
weighs on each alike; every line carries its round and the load average (load1) when it ended.
`off` runs once more after the last round ("off (again)"), so the spread of the baseline itself
is shown. The ratios compare the best round of each case with the best `off` round. Then, in
this process, the price of the no-op calls a submit makes with tracing off, in nanoseconds.

    .venv/bin/python bench/tracing_bench.py [--seconds 8] [--conns 16] [--pickups 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Conn, post_for

KEY = "bench-client-key"
ERRAND = str(Path(sys.executable).with_name("errand"))
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that reads and discards every export (counted)."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(folder: Path, case: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    db = folder / f"{case}.db"
    cfg = folder / f"{case}.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "keys": {"client": [KEY]},
                "storage": {"url": f"sqlite:///{db}", "sqlite_synchronous": "normal"},
                "agents": [{"id": "echo", "handler": "errand.agents.builtin:echo"}],
            }
        )
    )
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(
        [ERRAND, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)],
        env={**clean, **env},
        stdout=(folder / f"{case}.log").open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{case}: errand did not start: {(folder / f'{case}.log').read_text()[-2000:]}")


async def pickups(base: str, headers: dict[str, str], n: int) -> list[float]:
    """ms from created_at to started_at (the server's clock) of n submits made one at a time."""
    host, port = base.split("://", 1)[1].rsplit(":", 1)
    conn = Conn(host, int(port), headers)
    found: list[float] = []
    try:
        for i in range(n):
            r = await conn.request(
                "POST", "/v1/chat", json.dumps({"message": f"p{i}", "mode": "async"}).encode()
            )
            rid = json.loads(r.body)["request_id"]
            doc = json.loads((await conn.request("GET", f"/v1/requests/{rid}?wait=10")).body)
            found.append((doc["started_at"] - doc["created_at"]) * 1000)
    finally:
        await conn.close()
    return found


def run_case(folder: Path, case: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    headers = {"X-Muxi-Client-Key": KEY}
    if case.startswith("off+traceparent"):
        headers["traceparent"] = TRACEPARENT
    proc, base = serve(folder, case, env)
    try:
        body = json.dumps({"message": "hi", "mode": "async"}).encode()
        asyncio.run(post_for(base, 1.0, args.conns, "/v1/chat", lambda i: body, headers))  # warm up
        replies, wall = asyncio.run(
            post_for(base, args.seconds, args.conns, "/v1/chat", lambda i: body, headers)
        )
        time.sleep(1.0)  # let the workers drain before measuring pickup on an idle server
        picked = asyncio.run(pickups(base, headers, args.pickups))
    finally:
        proc.terminate()
        proc.wait(30)
    ok = [r for r in replies if r.status == 202]
    lat = sorted(r.latency * 1000 for r in ok)
    return {
        "case": case,
        "accepted_per_s": round(len(ok) / wall, 1),
        "errors": len(replies) - len(ok),
        "submit_p50_ms": round(lat[len(lat) // 2], 2),
        "submit_p99_ms": round(lat[int(len(lat) * 0.99)], 2),
        "pickup_p50_ms": round(statistics.median(picked), 2),
        "pickup_p99_ms": round(sorted(picked)[int(len(picked) * 0.99) - 1], 2),
    }


def noop_cost_ns() -> dict[str, float]:
    """ns per submit of what tracing off adds: reading the header, the no-op span, carrier()."""
    from errand import tracing

    headers = {"traceparent": TRACEPARENT, "content-type": "application/json"}
    plain = {"content-type": "application/json"}

    def submit_path(h: dict[str, str]) -> None:
        caller = tracing.from_headers(h)
        with tracing.span("errand.submit", kind="server", parent=caller, attributes={"a": 1}) as span:
            tracing.carrier()
            span.set_attribute("errand.replay", False)

    n = 200_000
    return {
        "no_header_ns": round(timeit.timeit(lambda: submit_path(plain), number=n) / n * 1e9, 1),
        "with_traceparent_ns": round(timeit.timeit(lambda: submit_path(headers), number=n) / n * 1e9, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--pickups", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
        "OTEL_SERVICE_NAME": "errand-bench",
    }
    cases = [("off", {}), ("off+traceparent", {}), ("on", otlp)]
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case, _ in cases}
    runs["off (again)"] = []
    plan = [(n, case, env) for n in range(1, args.rounds + 1) for case, env in cases]
    plan.append((args.rounds, "off (again)", {}))
    with tempfile.TemporaryDirectory(prefix="errand-trace-bench-") as tmp:
        for i, (round_no, case, env) in enumerate(plan):
            record = run_case(Path(tmp), case.split(" ")[0] + str(i), env, args)
            record.update(case=case, round=round_no, load1=round(os.getloadavg()[0], 2))
            runs[case].append(record)
            print(json.dumps(record), flush=True)
    best = {case: max(records, key=lambda r: r["accepted_per_s"]) for case, records in runs.items()}
    base = best["off"]
    for case in ("off+traceparent", "on", "off (again)"):
        r = best[case]
        print(
            json.dumps(
                {
                    "vs": f"{case} / off",
                    "throughput_ratio": round(r["accepted_per_s"] / base["accepted_per_s"], 3),
                    "pickup_p50_ratio": round(r["pickup_p50_ms"] / base["pickup_p50_ms"], 3),
                    "best_of": len(runs[case]),
                }
            )
        )
    print(json.dumps({"otlp_exports_received": Sink.received}))
    print(json.dumps({"tracing_off_noop_cost": noop_cost_ns()}))
    sink.shutdown()


if __name__ == "__main__":
    main()
