#!/usr/bin/env python3
"""How good is `estimated_seconds`? The heuristic before any history, the agent's p90 after.

    python bench/estimate_bench.py [--per-class 10] [--scale 25] [--out results.jsonl]

The workload is four kinds of message with a modelled duration each (a one-line question,
a summary, a multi-step task, a research task; see KINDS), +-20 % deterministic jitter. The
`modelled` agent (bench/live_agents.py) really sleeps that duration divided by `--scale`, so
the run is quick; every figure below is reported in modelled seconds (measured x scale).

Each scenario runs on a fresh SQLite database with a real `errand serve --no-workers`
(it answers the 202s, so the first round's estimates are made before anything ran: the
heuristic) and a separate `errand worker` process (it runs them; `duration_ms` is the actual
duration). A second round of the same messages is then estimated from the history the first
round left (p90 of the agent's recent durations).

Scenarios: `one_agent` sends every kind to one agent (history is per agent, so its p90 mixes
the kinds); `agent_per_kind` gives each kind its own agent. Reported per scenario and round,
as JSON lines: median absolute error (s), within-2x rate (estimate / actual in [0.5, 2]),
median ratio, and the same per kind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import errand_bench as eb
import httpx
import yaml

KINDS: dict[str, tuple[str, float]] = {
    "question": ("What time zone is Lisbon in?", 1.5),
    "summary": (
        "Summarize this paragraph in two sentences: "
        + "The committee met on Tuesday to review the budget, the hiring plan and the office move. " * 3,
        6.0,
    ),
    "multistep": ("1. fetch the sales data\n2. clean it\n3. chart it\nthen email me the chart", 20.0),
    "research": ("Research competitor pricing and create a comparison spreadsheet", 40.0),
}
"""kind -> (message, modelled duration in seconds of a model-backed agent)."""


def jitter(i: int) -> float:
    """0.8 .. 1.2, spread evenly and the same on every run."""
    return 0.8 + 0.4 * ((i * 7) % 11) / 10


def formation(folder: Path, agents: list[str]) -> Path:
    data = {
        "name": "estbench",
        "keys": {"client": [eb.KEY], "admin": [eb.ADMIN]},
        "storage": {
            "url": f"sqlite:///{folder}/est-{time.monotonic_ns()}.db",
            "sqlite_synchronous": "normal",
        },
        "async": {"mode": "async"},
        "workers": {"concurrency": 256, "lease_seconds": 30, "poll_interval": 0.1},
        "agents": [{"id": a, "handler": "live_agents:modelled"} for a in agents],
    }
    path = folder / f"formation-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def plan(per_kind: int, scenario: str) -> list[tuple[str, str, str, float]]:
    """(kind, agent, message, modelled seconds) for one round."""
    rows = []
    for kind, (message, seconds) in KINDS.items():
        agent = "generalist" if scenario == "one_agent" else kind
        for i in range(per_kind):
            rows.append((kind, agent, message, round(seconds * jitter(i), 3)))
    return rows


def submit_round(url: str, rows: list[tuple[str, str, str, float]], scale: float) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=url, headers=eb.headers(), timeout=30) as c:
        for kind, agent, message, modelled in rows:
            meta = {"modelled_s": modelled, "scale": scale}
            r = c.post(
                "/v1/chat", json={"message": message, "agent_id": agent, "mode": "async", "metadata": meta}
            )
            r.raise_for_status()
            out.append(
                {"kind": kind, "id": r.json()["request_id"], "estimate": r.json()["estimated_seconds"]}
            )
    return out


def collect(url: str, submitted: list[dict[str, Any]], timeout: float = 300) -> None:
    """Wait for every request; add its actual duration (in seconds as measured)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, headers=eb.headers(), timeout=70) as c:
        for row in submitted:
            while True:
                doc = c.get(f"/v1/requests/{row['id']}", params={"wait": 30}).json()
                if doc["status"] == "completed":
                    row["actual"] = doc["duration_ms"] / 1000
                    break
                if doc["status"] in ("failed", "cancelled") or time.monotonic() > deadline:
                    raise RuntimeError(f"{row['id']} ended {doc['status']}")


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [abs(r["est_model"] - r["actual_model"]) for r in rows]
    ratios = [r["est_model"] / r["actual_model"] for r in rows]
    return {
        "n": len(rows),
        "median_abs_error_s": round(statistics.median(errors), 2),
        "within_2x": round(sum(0.5 <= x <= 2 for x in ratios) / len(ratios), 3),
        "median_ratio": round(statistics.median(ratios), 2),
    }


def run_scenario(folder: Path, scenario: str, per_kind: int, scale: float) -> None:
    agents = ["generalist"] if scenario == "one_agent" else list(KINDS)
    cfg = formation(folder, agents)
    env = {**os.environ, "PYTHONPATH": f"{eb.HERE}:{os.environ.get('PYTHONPATH', '')}"}
    api = eb.Server(
        [eb.ERRAND, "serve", "--config", str(cfg), "--port", "{port}", "--no-workers"],
        env,
        folder / "api.log",
    )
    api.wait_ready()
    with open(folder / "worker.log", "ab") as log:
        worker = subprocess.Popen(
            [eb.ERRAND, "worker", "--config", str(cfg)],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        for round_name in ("heuristic", "history"):
            rows = submit_round(api.url, plan(per_kind, scenario), scale)
            collect(api.url, rows)
            for r in rows:
                r["actual_model"] = r["actual"] * scale
                # the heuristic speaks modelled seconds; a history estimate speaks measured ones
                r["est_model"] = r["estimate"] * (scale if round_name == "history" else 1.0)
            by_kind = {k: summary([r for r in rows if r["kind"] == k]) for k in KINDS}
            eb.emit(
                {
                    "bench": "estimate",
                    "scenario": scenario,
                    "round": round_name,
                    "scale": scale,
                    **summary(rows),
                    "by_kind": by_kind,
                }
            )
    finally:
        worker.terminate()
        worker.wait(30)
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--scale", type=float, default=25.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    eb.OUT = args.out
    folder = Path(tempfile.mkdtemp(prefix="errand-est-bench-"))
    eb.log("scratch folder", folder)
    for scenario in ("one_agent", "agent_per_kind"):
        run_scenario(folder, scenario, args.per_class, args.scale)


if __name__ == "__main__":
    sys.exit(main())
