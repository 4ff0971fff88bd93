#!/usr/bin/env python3
"""Takeover time after SIGKILL: dead-owner detection against the lease-expiry fallback.

    python bench/takeover_bench.py [--scenario sqlite|postgres|both] [--rounds 3] [--lease 10]
                                   [--pg-dsn postgresql://postgres@127.0.0.1:5432/test] [--out f.jsonl]

Each round runs one request whose first attempt reports 40 % and hangs, SIGKILLs the process
running it, and times until the second attempt starts (the agent stamps each start with
time.time() in runs.log):
  sqlite    the only `errand serve` is killed and started again; figures from the kill and
            from the restart (the launch of the new process);
  postgres  `errand serve --no-workers` and two `errand worker` processes; the worker running
            the request is killed; the figure is from the kill to the start on the other one.
Each scenario runs twice in the same run, with the same lease (`--lease`, default 10 s):
  detection = dead-owner   workers.liveness_interval 1 (the default): the dead worker is seen
                           directly (its pid gone / its database session ended);
  detection = lease        workers.liveness_interval 0: only lease expiry takes it over, the
                           fallback left for partitions (and what errand did before).
One JSON line per round, then one summary line per scenario and detection (median, max).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import errand_bench as eb
import httpx
import yaml

KEY = "takeover-bench-key"
AGENTS = r"""
import asyncio, os, time

_LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")


async def stuck(message, ctx):
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"start {ctx.request_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\n".encode())
    os.close(fd)
    if ctx.attempt == 1:
        ctx.progress(percent=40, message="40%")
        await asyncio.sleep(3600)
    return "done"
"""


def formation(folder: Path, url: str, lease: float, liveness: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_takeover_agents.py").write_text(AGENTS)
    path = folder / "formation.yaml"
    data = {
        "name": "takeover-bench",
        "keys": {"client": [KEY], "admin": ["takeover-bench-admin"]},
        "storage": {"url": url, "pool_size": 3},
        "async": {"mode": "async"},
        "workers": {"concurrency": 4, "lease_seconds": lease, "liveness_interval": liveness},
        "workflow": {"task_timeout": 7200, "retry": {"max_attempts": 5, "initial_delay": 0.05}},
        "agents": [{"id": "stuck", "handler": "bench_takeover_agents:stuck"}],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def starts(folder: Path, rid: str) -> dict[int, tuple[int, float]]:
    """attempt -> (pid, start time) of the request's attempts so far."""
    try:
        lines = (folder / "runs.log").read_text().splitlines()
    except FileNotFoundError:
        return {}
    found = {}
    for parts in (line.split() for line in lines):
        if len(parts) == 5 and parts[1] == rid:
            found[int(parts[2])] = (int(parts[3]), float(parts[4]))
    return found


def wait(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.01)
    raise TimeoutError(f"not within {timeout}s")


def submit_stuck(base: str, folder: Path) -> tuple[str, int]:
    """Submit; return (request id, pid running attempt 1) once it is at 40 %."""
    r = httpx.post(
        f"{base}/v1/chat", json={"message": "x", "mode": "async"}, headers={"X-Muxi-Client-Key": KEY}
    )
    r.raise_for_status()
    rid: str = r.json()["request_id"]
    pid, _ = wait(lambda: starts(folder, rid).get(1), 30)
    time.sleep(0.2)  # let it report 40 % and its lease be renewed as in a real run
    return rid, pid


def errand(args: list[str], folder: Path, name: str, cfg: Path) -> eb.Server:
    env = {**os.environ, "PYTHONPATH": f"{folder}:{os.environ.get('PYTHONPATH', '')}"}
    return eb.Server([eb.ERRAND, *args, "--config", str(cfg)], env, folder / f"{name}.log")


def kill(server: eb.Server) -> float:
    os.killpg(server.p.pid, 9)
    server.p.wait(10)
    return time.time()


def sqlite_round(folder: Path, lease: float, liveness: float) -> dict[str, float]:
    cfg = formation(folder, f"sqlite:///{folder}/takeover.db", lease, liveness)
    serve = ["serve", "--host", "127.0.0.1", "--port", "{port}"]
    first = errand(serve, folder, "serve1", cfg)
    second: eb.Server | None = None
    try:
        first.wait_ready()
        rid, _ = submit_stuck(first.url, folder)
        killed = kill(first)
        restarted = time.time()
        second = errand(serve, folder, "serve2", cfg)
        _, began = wait(lambda: starts(folder, rid).get(2), lease * 3 + 30)
        return {"from_kill_s": began - killed, "from_restart_s": began - restarted}
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()


def postgres_round(folder: Path, url: str, lease: float, liveness: float) -> dict[str, float]:
    cfg = formation(folder, url, lease, liveness)
    servers = [
        errand(["serve", "--host", "127.0.0.1", "--port", "{port}", "--no-workers"], folder, "api", cfg)
    ]
    try:
        servers[0].wait_ready()
        workers = [errand(["worker"], folder, f"worker{n}", cfg) for n in range(2)]
        servers += workers
        time.sleep(1.5)  # both workers up and registered
        rid, pid = submit_stuck(servers[0].url, folder)
        victim = next(w for w in workers if w.p.pid == pid)
        killed = kill(victim)
        other, began = wait(lambda: starts(folder, rid).get(2), lease * 3 + 30)
        assert other != pid
        return {"from_kill_s": began - killed}
    finally:
        for server in servers:
            server.stop()


async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def run(scenario: str, rounds: int, lease: float, pg_dsn: str, scratch: Path) -> None:
    for detection, liveness in (("dead-owner", 1.0), ("lease", 0.0)):
        figures: list[float] = []
        for n in range(rounds):
            folder = Path(tempfile.mkdtemp(prefix=f"takeover-{scenario}-", dir=scratch))
            if scenario == "sqlite":
                record = sqlite_round(folder, lease, liveness)
            else:
                name = f"errand_takeover_{secrets.token_hex(4)}"
                asyncio.run(_admin(pg_dsn, f'CREATE DATABASE "{name}"'))
                try:
                    record = postgres_round(folder, pg_dsn.rsplit("/", 1)[0] + "/" + name, lease, liveness)
                finally:
                    asyncio.run(_admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            figures.append(record["from_kill_s"])
            rounded = {k: round(v, 3) for k, v in record.items()}
            eb.emit(
                {"bench": "takeover", "scenario": scenario, "detection": detection, "round": n, **rounded}
            )
        eb.emit(
            {
                "bench": "takeover",
                "scenario": scenario,
                "detection": detection,
                "lease_seconds": lease,
                "rounds": rounds,
                "from_kill_median_s": round(statistics.median(figures), 3),
                "from_kill_max_s": round(max(figures), 3),
            }
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lease", type=float, default=10.0)
    ap.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    eb.OUT = a.out
    with tempfile.TemporaryDirectory(prefix="errand-takeover-bench-") as scratch:
        for scenario in ("sqlite", "postgres") if a.scenario == "both" else (a.scenario,):
            run(scenario, a.rounds, a.lease, a.pg_dsn, Path(scratch))


if __name__ == "__main__":
    main()
