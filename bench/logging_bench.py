#!/usr/bin/env python3
"""What logging costs: submit throughput and pickup latency of `errand serve` (SQLite, workers
on) with logging off (`--log-level warning --no-access-log`), at INFO as text, at INFO as JSON
lines (both with the access log) and at INFO as text without the access log -- each in the same
run, in interleaved rounds (off, text, json, text-no-access, off, ...) so a busy machine
weighs on every setting alike. The log goes to a file, as a service manager would keep it.

    python bench/logging_bench.py [--seconds 8] [--conns 32] [--rounds 2] [--pickups 100]

Submit: async chats for `--seconds` over `--conns` keep-alive connections of the lean client
(bench/loadgen.py), as errand_bench.py's submit-lean. Pickup: `--pickups` requests one at a time
20 ms apart; latency = agent start - time just before the POST. Prints JSON lines: one per
setting and round, then a summary per setting with its ratio to `off` (best round of each), and
the server's CPU time per accepted request (its ratio to `off` is what logging costs a
CPU-bound server, and is far steadier than throughput on a shared machine).
Last, `log-path`: the CPU the log path itself costs per request in this process (the four INFO
lines of a submit -- accepted, access, started, completed -- created, formatted and written to a
file, one request at a time with a pause between them as on a server; min of 5 runs), beside the
same calls with logging off; its share of `off`'s server CPU per request is what logging can cost
a CPU-bound server at most, and does not depend on the load of a shared machine as much.
Target: INFO costs at most 10 % of submit throughput (ratio >= 0.90).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import errand_bench as eb
import httpx
from http_submit_lean import summarize
from loadgen import post_for

from errand import logs

SETTINGS: dict[str, tuple[str, ...]] = {
    "off": ("--log-level", "warning", "--no-access-log"),
    "info-text": ("--log-level", "info", "--log-format", "text", "--access-log"),
    "info-json": ("--log-level", "info", "--log-format", "json", "--access-log"),
    "info-text-no-access": ("--log-level", "info", "--log-format", "text", "--no-access-log"),
}


def submit_rate(b: eb.Bench, flags: tuple[str, ...], seconds: float, conns: int) -> dict[str, Any]:
    with eb.running(b.serve(b.formation(agent="noop"), *flags)) as s:
        cpu0 = sum(eb.cpu_seconds([s.p.pid]).values())
        replies, wall = asyncio.run(
            post_for(s.url, seconds, conns, "/v1/chat", eb.body, {"X-Muxi-Client-Key": eb.KEY})
        )
        time.sleep(0.5)  # the last attempts finish and their lines are written
        cpu = sum(eb.cpu_seconds([s.p.pid]).values()) - cpu0
    record = summarize(replies, wall, {202})
    record["server_cpu_us_per_request"] = round(cpu / max(1, record["accepted"]) * 1e6, 1)
    return record


def pickup(b: eb.Bench, flags: tuple[str, ...], n: int, gap: float = 0.02) -> dict[str, Any]:
    b.reset_marks()
    server = b.serve(b.formation(agent="noop"), *flags)
    with eb.running(server) as s, httpx.Client(base_url=s.url, headers=eb.headers(), timeout=10) as c:
        for i in range(2):  # warm-up
            c.post("/v1/chat", content=eb.body(10_000 + i))
        b.wait_marks(2, 10)
        time.sleep(0.5)
        b.reset_marks()
        for i in range(n):
            c.post("/v1/chat", content=eb.body(i))
            time.sleep(gap)
        rows = b.wait_marks(n, 30)
    lat = [(r[2] - r[1]) * 1000 for r in rows]
    return {
        "n": len(rows),
        "pickup_p50_ms": round(eb.pct(lat, 50), 2),
        "pickup_p99_ms": round(eb.pct(lat, 99), 2),
    }


def log_lines(b: eb.Bench) -> int:
    path = b.dir / "serve.log"
    return sum(1 for _ in path.open("rb")) if path.exists() else 0


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def log_path_us(fmt: str, n: int = 2000, runs: int = 5) -> float:
    """CPU us per request of its four INFO lines through errand.logs (`off`: level warning)."""
    with tempfile.TemporaryFile("w") as out:
        level = "warning" if fmt == "off" else "info"
        logs.configure(logs.LogSettings(level=level, format="json" if fmt == "json" else "text"), stream=out)
        try:
            api, access, worker = (
                logging.getLogger(n) for n in ("errand.api", "uvicorn.access", "errand.worker")
            )
            best = float("inf")
            for run in range(runs):
                cpu0 = _process_cpu()
                for i in range(n):
                    rid = f"req_{run}_{i:020d}"
                    token = logs.REQUEST_ID.set(rid)
                    api.info(
                        "accepted %s: kind=%s agent=%s mode=%s user=%s",
                        rid,
                        "chat",
                        "noop",
                        "async",
                        "0",
                        extra={"request_id": rid},
                    )
                    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "POST", "/v1/chat", "1.1", 202)
                    logs.REQUEST_ID.reset(token)
                    worker.info(
                        "attempt %d of %s started on worker %s (agent %s)%s",
                        1,
                        rid,
                        "wrk_x",
                        "noop",
                        "",
                        extra={"request_id": rid},
                    )
                    worker.info(
                        "completed %s in %.3fs (attempt %d)", rid, 0.001, 1, extra={"request_id": rid}
                    )
                    time.sleep(0.0002)  # requests arrive one by one, as on a server
                logs.flush()
                best = min(best, (_process_cpu() - cpu0) / n * 1e6)
        finally:
            logs.shutdown()
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pickups", type=int, default=100)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    eb.OUT = args.out
    b = eb.Bench("sqlite", "", Path("/tmp"))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    for round_no in range(1, args.rounds + 1):
        for name, flags in SETTINGS.items():
            before = log_lines(b)
            record = submit_rate(b, flags, args.seconds, args.conns)
            record["log_lines_per_request"] = round((log_lines(b) - before) / max(1, record["accepted"]), 2)
            record.update(pickup(b, flags, args.pickups))
            runs[name].append(record)
            eb.emit({"bench": "logging", "setting": name, "round": round_no, **record})
    base = max(r["per_s"] for r in runs["off"])
    for name, records in runs.items():
        best = max(records, key=lambda r: r["per_s"])
        eb.emit(
            {
                "bench": "logging-summary",
                "setting": name,
                "submit_per_s": best["per_s"],
                "ratio_to_off": round(best["per_s"] / base, 3),
                "pickup_p50_ms": min(r["pickup_p50_ms"] for r in records),
                "pickup_p99_ms": min(r["pickup_p99_ms"] for r in records),
                "log_lines_per_request": best["log_lines_per_request"],
                "server_cpu_us_per_request": min(r["server_cpu_us_per_request"] for r in records),
                "cpu_ratio_to_off": round(
                    min(r["server_cpu_us_per_request"] for r in records)
                    / min(r["server_cpu_us_per_request"] for r in runs["off"]),
                    3,
                ),
            }
        )
    off_cpu = min(r["server_cpu_us_per_request"] for r in runs["off"])
    idle = log_path_us("off")
    for fmt in ("text", "json"):
        cost = log_path_us(fmt) - idle
        eb.emit(
            {
                "bench": "log-path",
                "format": fmt,
                "cpu_us_per_request": round(cost, 1),
                "cpu_us_per_line": round(cost / 4, 1),
                "share_of_off_server_cpu": round(cost / off_cpu, 3),
            }
        )


if __name__ == "__main__":
    main()
