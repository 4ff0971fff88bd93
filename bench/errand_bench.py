#!/usr/bin/env python3
"""errand's benchmarks, each with a baseline measured in the same run.

    python bench/errand_bench.py all  [--storage sqlite|postgres] [--out results.jsonl]
    python bench/errand_bench.py submit|burst|drain|pickup|io|scaleout ...

Workloads (the same definitions as ../shared/bench-peers so the figures sit side by side):
  submit    HTTP async submits, 32 keep-alive connections, 10 s, measured with wrk; baseline: a
            bare Starlette endpoint on the same uvicorn settings (bench/bare_app.py). Reports
            accepted/s, p50/p99 and the ratio errand / bare.
  burst     10,000 async submits over 64 connections, then every accepted id is read back
            until completed: lost = accepted - completed (must be 0).
  drain     5,000 no-op requests accepted by `errand serve --no-workers`, then ONE
            `errand worker` process: drain/s = 5000 / (last end - first start) (peers' B).
  pickup    idle server; 200 requests one at a time 20 ms apart; latency = agent start - time
            just before the POST (peers' C).
  io        1,000 requests each awaiting 1 s of I/O, workers.concurrency 1000: wall time from
            first submit to last completion, and peak RSS of the server process (peers' D).
  scaleout  (PostgreSQL) drain with 1, 2 and 4 worker processes; cross-process pickup latency.

Everything runs on loopback; every loop is bounded in count and time. Servers are real
`errand` subprocesses; figures are printed as JSON lines (and appended to --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from loadgen import post_many

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
ERRAND = str(BIN / "errand")
KEY = "bench-client-key"
ADMIN = "bench-admin-key"
OUT: Path | None = None
CONTEXT: dict[str, Any] = {}
"""Merged into every record (e.g. the SQLite synchronous setting of the run)."""


def emit(record: dict[str, Any]) -> None:
    record = {"t": round(time.time(), 3), "load1": round(os.getloadavg()[0], 2), **record, **CONTEXT}
    line = json.dumps(record)
    print(line, flush=True)
    if OUT is not None:
        with OUT.open("a") as f:
            f.write(line + "\n")


def log(*a: Any) -> None:
    print("#", *a, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- processes


class Server:
    """An errand (or bare) server subprocess in its own process group."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log_path.open("ab") as out:
            self.p = subprocess.Popen(
                [a.replace("{port}", str(self.port)) for a in args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, path: str = "/ready", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"server exited with {self.p.returncode}")
            try:
                r = httpx.get(self.url + path, timeout=1)
                if r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


def rss_tree_mb(pid: int) -> float:
    """RSS of a process and its children, from /proc (MB)."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout
        pids = [int(x) for x in out.split()] or [pid]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live process, from /proc/PID/stat (seconds)."""
    out: dict[int, float] = {}
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, ValueError, IndexError):
            continue
    return out


def machine_ticks() -> tuple[int, int, int]:
    """(busy, iowait, total) jiffies of all cores since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq + steal
    return busy, iowait, busy + idle + iowait


class CpuMeter:
    """Where the CPU went between two snapshots: the given worker processes, every `postgres`
    process (all sessions: other users of the server count too) and the whole machine. Tells
    whether a drain is bound by the workers, by PostgreSQL or by the cores themselves."""

    def __init__(self, workers: list[int]) -> None:
        self.workers = workers
        self.t0 = time.monotonic()
        self.w0, self.pg0, self.m0 = self._snap()

    def _snap(self) -> tuple[dict[int, float], dict[int, float], tuple[int, int, int]]:
        out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
        return cpu_seconds(self.workers), cpu_seconds([int(x) for x in out.split()]), machine_ticks()

    def usage(self) -> dict[str, float]:
        """Percent of ONE core for processes, percent of ALL cores for the machine."""
        wall = time.monotonic() - self.t0
        w1, pg1, m1 = self._snap()

        def used(before: dict[int, float], after: dict[int, float]) -> float:
            return sum(v - before.get(p, 0.0) for p, v in after.items())  # new processes: all of it

        busy, iowait, total = (a - b for a, b in zip(m1, self.m0, strict=True))
        return {
            "cpu_workers_pct": round(100 * used(self.w0, w1) / wall),
            "cpu_postgres_pct": round(100 * used(self.pg0, pg1) / wall),
            "machine_busy_pct": round(100 * busy / max(total, 1)),
            "machine_iowait_pct": round(100 * iowait / max(total, 1)),
        }


class Bench:
    """One formation folder, its environment and the servers started from it."""

    def __init__(self, storage: str, pg_dsn: str, scratch: Path) -> None:
        self.storage, self.pg_dsn = storage, pg_dsn
        self.dir = Path(tempfile.mkdtemp(prefix="errand-bench-", dir=scratch))
        self.mark = self.dir / "marks.txt"
        self.env = {
            **os.environ,
            "BENCH_MARK_FILE": str(self.mark),
            "PYTHONPATH": f"{HERE}:{os.environ.get('PYTHONPATH', '')}",
        }
        self.n_db = 0
        self.sync = "full"
        """storage.sqlite_synchronous for every formation (--sync)."""
        self.pg_names: list[str] = []

    def storage_url(self) -> str:
        self.n_db += 1
        if self.storage == "sqlite":
            return f"sqlite:///{self.dir}/bench{self.n_db}.db"
        name = f"errand_bench_{os.getpid()}_{self.n_db}"
        admin = self.pg_dsn.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        self.pg_names.append(name)
        return self.pg_dsn.rsplit("/", 1)[0] + "/" + name

    def drop_databases(self) -> None:
        """The PostgreSQL databases of this run (their servers are stopped by now)."""
        admin = self.pg_dsn.rsplit("/", 1)[0] + "/postgres"
        for name in self.pg_names:
            subprocess.run(
                ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False
            )

    def formation(
        self, *, concurrency: int = 64, agent: str = "noop", sync: str | None = None, url: str | None = None
    ) -> Path:
        data = {
            "name": "bench",
            "keys": {"client": [KEY], "admin": [ADMIN]},
            "storage": {"url": url or self.storage_url(), "sqlite_synchronous": sync or self.sync},
            "async": {"mode": "async"},
            "workers": {"concurrency": concurrency, "lease_seconds": 30},
            "agents": [{"id": agent, "handler": f"bench_agents:{agent}"}],
        }
        path = self.dir / f"formation-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def serve(self, cfg: Path, *extra: str) -> Server:
        s = Server(
            [ERRAND, "serve", "--config", str(cfg), "--port", "{port}", *extra],
            self.env,
            self.dir / "serve.log",
        )
        s.wait_ready()
        return s

    def worker(self, cfg: Path) -> subprocess.Popen[bytes]:
        with (self.dir / "worker.log").open("ab") as out:
            return subprocess.Popen(
                [ERRAND, "worker", "--config", str(cfg)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def read_marks(self) -> list[tuple[int, float, float, float]]:
        if not self.mark.exists():
            return []
        rows = []
        for line in self.mark.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                rows.append((int(parts[0]), float(parts[1]), float(parts[2]), float(parts[3])))
        return rows

    def reset_marks(self) -> None:
        # truncate, never unlink: the agents keep an O_APPEND descriptor open on this file
        self.mark.write_bytes(b"")

    def wait_marks(self, n: int, timeout: float) -> list[tuple[int, float, float, float]]:
        deadline = time.monotonic() + timeout
        rows = self.read_marks()
        while len(rows) < n and time.monotonic() < deadline:
            time.sleep(0.01)
            rows = self.read_marks()
        return rows


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def headers() -> dict[str, str]:
    return {"X-Muxi-Client-Key": KEY, "Content-Type": "application/json"}


def body(tid: int, sleep: float | None = None) -> bytes:
    msg: dict[str, Any] = {"tid": tid, "t_enq": time.time()}
    if sleep is not None:
        msg["sleep"] = sleep
    return json.dumps({"message": json.dumps(msg), "mode": "async"}).encode()


async def submit_many(
    url: str, n: int, conns: int, sleep: float | None = None, tid0: int = 0
) -> tuple[list[str], list[float], int]:
    """POST n async chats over `conns` keep-alive connections (bench/loadgen.py, a lean raw
    HTTP/1.1 client, so the client is not the bottleneck); returns (ids, latencies, errors)."""
    hdrs = {"X-Muxi-Client-Key": KEY}
    replies = await post_many(url, n, conns, "/v1/chat", lambda i: body(tid0 + i, sleep), hdrs)
    ids = [json.loads(r.body)["request_id"] for r in replies if r.status == 202]
    lat = [r.latency for r in replies if r.status == 202]
    return ids, lat, len(replies) - len(ids)


# ----------------------------------------------------------------------------- workloads

WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Muxi-Client-Key"] = "%s"
wrk.body = '{"message": "{\\\\"tid\\\\": 0, \\\\"t_enq\\\\": 0}", "mode": "async"}'
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, \\"non2xx\\": %%d, \\"errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, lua: Path, conns: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua), url + "/v1/chat"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    d = json.loads(line[5:])
    secs = d["duration_us"] / 1e6
    return {
        "per_s": round(d["requests"] / secs, 1),
        "p50_ms": d["p50_us"] / 1000,
        "p99_ms": d["p99_us"] / 1000,
        "requests": d["requests"],
        "non2xx": d["non2xx"],
        "errors": d["errors"],
    }


def w_submit(b: Bench, conns: int = 32, seconds: int = 10) -> None:
    if shutil.which("wrk") is None:
        log("wrk not found (apt-get install wrk): skipping the submit benchmark")
        return
    lua = b.dir / "post.lua"
    lua.write_text(WRK_LUA % KEY)
    bare = Server(
        [
            str(BIN / "uvicorn"),
            "bare_app:app",
            "--port",
            "{port}",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        b.env,
        b.dir / "bare.log",
    )
    bare.wait_ready("/v1/chat")
    with running(bare):
        base = wrk(bare.url, lua, conns, seconds)
    emit({"bench": "submit", "system": "bare-starlette", "storage": "-", **base})
    setups = (
        ("errand serve (workers on)", (), False),
        ("errand serve --no-workers", ("--no-workers",), False),
        ("errand serve --no-workers + 1 errand worker", ("--no-workers",), True),
    )
    for label, extra, separate_worker in setups:
        cfg = b.formation(agent="noop")
        with running(b.serve(cfg, *extra)) as s:
            worker = b.worker(cfg) if separate_worker else None
            try:
                r = wrk(s.url, lua, conns, seconds)
            finally:
                if worker is not None:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(30)
        emit(
            {
                "bench": "submit",
                "system": label,
                "storage": b.storage,
                **r,
                "ratio_vs_bare": round(r["per_s"] / base["per_s"], 3),
            }
        )


async def httpx_rate(url: str, conns: int, seconds: float) -> dict[str, float]:
    """Accepted async submits/s with an httpx client: the same client the LangGraph (E1) and
    MUXI peer measurements use, so these figures compare like with like."""
    lat: list[float] = []
    ok = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=url, headers=headers(), limits=limits, timeout=30) as c:

        async def one() -> None:
            nonlocal ok
            tid = 0
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = await c.post("/v1/chat", content=body(tid))
                tid += 1
                if r.status_code == 202:
                    ok += 1
                    lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(conns)))
        wall = time.perf_counter() - t0
    return {
        "per_s": round(ok / wall, 1),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "requests": ok,
    }


def w_submit_httpx(b: Bench, conns: int = 32, seconds: int = 10) -> None:
    with running(b.serve(b.formation(agent="noop"))) as s:
        r = asyncio.run(httpx_rate(s.url, conns, seconds))
    emit({"bench": "submit-httpx", "system": "errand serve (workers on)", "storage": b.storage, **r})


def w_burst(b: Bench, n: int = 10_000, conns: int = 64) -> None:
    with running(b.serve(b.formation(agent="noop"))) as s:
        t0 = time.time()
        ids, lat, errors = asyncio.run(submit_many(s.url, n, conns))
        t_sub = time.time() - t0
        done = asyncio.run(count_completed(s.url, ids, timeout=300))
    emit(
        {
            "bench": "burst",
            "system": "errand",
            "storage": b.storage,
            "submitted": n,
            "accepted": len(ids),
            "errors": errors,
            "completed": done,
            "lost": len(ids) - done,
            "submit_s": round(t_sub, 2),
            "accepted_per_s": round(len(ids) / t_sub, 1),
            "p50_ms": round(pct(lat, 50) * 1000, 2),
            "p99_ms": round(pct(lat, 99) * 1000, 2),
        }
    )


async def count_completed(url: str, ids: list[str], timeout: float) -> int:
    """Read every id back (long-poll) until completed; returns how many completed."""
    sem = asyncio.Semaphore(32)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(
        base_url=url, headers=headers(), timeout=70, limits=httpx.Limits(max_connections=32)
    ) as c:

        async def one(rid: str) -> bool:
            async with sem:
                while time.monotonic() < deadline:
                    r = await c.get(f"/v1/requests/{rid}", params={"wait": 30})
                    if r.status_code != 200:
                        return False
                    st = r.json()["status"]
                    if st in ("completed", "failed", "cancelled"):
                        return bool(st == "completed")
                return False

        results = await asyncio.gather(*(one(r) for r in ids))
    return sum(results)


def w_drain(
    b: Bench,
    n: int = 5000,
    workers: int = 1,
    concurrency: int = 64,
    label: str = "drain",
    confirm_http: bool = True,
    prebooted: bool = False,
) -> None:
    """Peers' B. `confirm_http=False` skips reading every id back over HTTP (a minute for
    20,000 ids): the store's own count of completed requests then stands as confirmation.
    `prebooted` (PostgreSQL; scaleout): the backlog is held back (run_at moved an hour ahead)
    until every worker process has booted and LISTENs, then released at once with a NOTIFY,
    so k workers start together instead of the first one draining alone while the others
    import (worker boot is ~0.5-1 s of CPU each on this machine)."""
    url = b.storage_url()
    cfg = b.formation(agent="noop", concurrency=concurrency, url=url)
    b.reset_marks()
    with running(b.serve(cfg, "--no-workers")) as s:
        ids, _lat, errors = asyncio.run(submit_many(s.url, n, 64))
        assert len(ids) == n, f"only {len(ids)} of {n} accepted ({errors} errors)"
        if prebooted:
            asyncio.run(pg_run(url, f"UPDATE requests SET run_at = run_at + {HOLD_S}"))
        t_spawn = time.time()
        procs = [b.worker(cfg) for _ in range(workers)]
        try:
            if prebooted:
                wait_listeners(url, workers + 1, timeout=60)  # + the API process's own
                asyncio.run(pg_run(url, f"UPDATE requests SET run_at = run_at - {HOLD_S}", NOTIFY_WORK))
            b.wait_marks(1, timeout=60)  # CPU is counted from the first task on (not the boot)
            meter = CpuMeter([p.pid for p in procs])
            durable, t_durable = completed_in_store(url, n, timeout=300)
            cpu = meter.usage()
            rows = b.wait_marks(n, timeout=300)
            done = asyncio.run(count_completed(s.url, ids, timeout=120)) if confirm_http else durable
            t_confirm = time.time() if confirm_http else t_durable
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                p.wait(30)
    starts = [r[2] for r in rows]
    ends = [r[3] for r in rows]
    span = max(ends) - min(starts)
    emit(
        {
            "bench": label,
            "system": "errand",
            "storage": b.storage,
            "workers": workers,
            "n": n,
            "executed": len(rows),
            "completed": done,
            "drain_per_s": round(len(rows) / span, 1),
            "durable_per_s": round(durable / (t_durable - min(starts)), 1),
            "total_s_incl_boot": round(max(ends) - t_spawn, 2),
            "durable_total_s": round(t_durable - t_spawn, 2),
            "confirm_lag_s": round(t_confirm - max(ends), 3),
            **cpu,
        }
    )


HOLD_S = 3600
NOTIFY_WORK = "SELECT pg_notify('errand_work', '')"  # errand.store.postgres.sql.CH_WORK


async def pg_run(url: str, *statements: str) -> Any:
    """Statements in one transaction; returns the last one's first value."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            value = None
            for statement in statements:
                value = await conn.fetchval(statement)
            return value
    finally:
        await conn.close()


def wait_listeners(url: str, k: int, timeout: float) -> None:
    """Until k errand processes LISTEN on this database (each store keeps one such connection,
    opened once the process has booted)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'errand-listen'"
    )
    deadline = time.monotonic() + timeout
    while asyncio.run(pg_run(url, query)) < k:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {k} errand processes listening after {timeout}s")
        time.sleep(0.05)


def completed_in_store(url: str, n: int, timeout: float) -> tuple[int, float]:
    """Poll the database itself (every 20 ms) until n requests are `completed`; returns the
    count and the time.time() it was reached (or the timeout). This is the durable end a
    client reading back sees: the agents' marks run ahead of it by the outcome writes still
    queued, and reading 5,000 ids back over HTTP adds its own lag (confirm_lag_s). The peers'
    harness reads Procrastinate's `succeeded` rows the same way."""
    query = "SELECT count(*) FROM requests WHERE status = 'completed'"
    deadline = time.monotonic() + timeout
    if url.startswith("sqlite:"):
        import sqlite3

        con = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=5)
        try:
            while True:
                count = int(con.execute(query).fetchone()[0])
                if count >= n or time.monotonic() > deadline:
                    return count, time.time()
                time.sleep(0.02)
        finally:
            con.close()

    async def poll() -> tuple[int, float]:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            while True:
                count = int(await conn.fetchval(query))
                if count >= n or time.monotonic() > deadline:
                    return count, time.time()
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    return asyncio.run(poll())


def w_pickup(b: Bench, n: int = 200, gap: float = 0.02, cross_process: bool = False) -> None:
    cfg = b.formation(agent="noop")
    b.reset_marks()
    procs: list[subprocess.Popen[bytes]] = []
    extra = ("--no-workers",) if cross_process else ()
    with running(b.serve(cfg, *extra)) as s:
        if cross_process:
            procs.append(b.worker(cfg))
        with httpx.Client(base_url=s.url, headers=headers(), timeout=10) as c:
            for i in range(2):  # warm-up
                c.post("/v1/chat", content=body(10_000 + i))
            b.wait_marks(2, 10)
            time.sleep(1.0)
            b.reset_marks()
            for i in range(n):
                c.post("/v1/chat", content=body(i))
                time.sleep(gap)
            rows = b.wait_marks(n, 30)
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(30)
    lat = [(r[2] - r[1]) * 1000 for r in rows]
    emit(
        {
            "bench": "pickup",
            "system": "errand",
            "storage": b.storage,
            "cross_process": cross_process,
            "n": len(rows),
            "p50_ms": round(pct(lat, 50), 2),
            "p99_ms": round(pct(lat, 99), 2),
        }
    )


def w_io(b: Bench, n: int = 1000, secs: float = 1.0) -> None:
    cfg = b.formation(agent="sleep", concurrency=n)
    b.reset_marks()
    with running(b.serve(cfg)) as s:
        peak = rss_tree_mb(s.p.pid)
        stop = False

        async def sample() -> None:
            nonlocal peak
            while not stop:
                peak = max(peak, rss_tree_mb(s.p.pid))
                await asyncio.sleep(0.1)

        async def go() -> dict[str, float]:
            nonlocal stop
            sampler = asyncio.create_task(sample())
            t0 = time.time()
            _ids, _lat, _errors = await submit_many(s.url, n, 64, sleep=secs)
            t_sub = time.time() - t0
            rows = await asyncio.to_thread(b.wait_marks, n, 60)
            stop = True
            await sampler
            if not rows:
                return {"completed": 0}
            return {
                "completed": len(rows),
                "total_s": round(max(r[3] for r in rows) - t0, 2),
                "submit_s": round(t_sub, 2),
                "first_start_s": round(min(r[2] for r in rows) - t0, 2),
                "last_start_s": round(max(r[2] for r in rows) - t0, 2),
            }

        res = asyncio.run(go())
    emit(
        {"bench": "io", "system": "errand", "storage": b.storage, "n": n, "sleep_s": secs, **res}
        | {"peak_rss_mb": round(peak, 1)}
    )


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=["all", "submit", "burst", "drain", "pickup", "io", "scaleout"])
    ap.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--sync", choices=["full", "normal"], default="full")
    ap.add_argument("--scale-n", type=int, default=20_000, help="requests per scaleout drain")
    a = ap.parse_args()
    OUT = a.out
    scratch = Path(os.environ.get("BENCH_SCRATCH", tempfile.gettempdir()))
    b = Bench(a.storage, a.pg_dsn, scratch)
    b.sync = a.sync
    if a.storage == "sqlite":
        CONTEXT["sqlite_sync"] = a.sync
    log("scratch", b.dir)
    w = a.workload
    if w in ("all", "submit"):
        w_submit(b, seconds=a.seconds)
    if w in ("all", "submit"):
        w_submit_httpx(b, seconds=a.seconds)
    if w in ("all", "burst"):
        w_burst(b)
    if w in ("all", "drain"):
        w_drain(b)
    if w in ("all", "pickup"):
        w_pickup(b)
        w_pickup(b, cross_process=True)
    if w in ("all", "io"):
        w_io(b)
    if w == "scaleout":
        for k in (1, 2, 4):
            w_drain(b, n=a.scale_n, workers=k, label="scaleout", confirm_http=False, prebooted=True)
        w_pickup(b, cross_process=True)
    b.drop_databases()
    shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
