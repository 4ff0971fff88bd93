#!/usr/bin/env python3
"""One markdown table from one compare.sh run: errand's records beside its peers'.

    python bench/report.py bench/results/compare-<stamp>
reads <prefix>.errand.jsonl, <prefix>.peers.jsonl and <prefix>.muxi.json (those present).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def submit_table(
    errand: list[dict[str, Any]], peers: list[dict[str, Any]], muxi: dict[str, Any]
) -> list[str]:
    out = [
        "| system | client | accepted/s | p50 ms | p99 ms | vs bare | vs LangGraph |",
        "|---|---|---|---|---|---|---|",
    ]
    bare = next((r for r in errand if r["bench"] == "submit" and r["system"] == "bare-starlette"), None)
    lg = next((r for r in peers if r.get("peer") == "langgraph" and r.get("workload") == "E1"), None)
    lg_rate = lg["runs_per_s"] if lg else None

    def ratio(v: float, base: float | None) -> str:
        return f"{v / base:.2f}×" if base else "–"

    for r in errand:
        if r["bench"] not in ("submit", "submit-httpx"):
            continue
        client = "wrk, 32 conns" if r["bench"] == "submit" else "httpx, 32 conns"
        base = bare["per_s"] if bare and r["bench"] == "submit" else None
        out.append(
            f"| {r['system']} | {client} | {fmt(r['per_s'])} | {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} "
            f"| {ratio(r['per_s'], base) if r['system'] != 'bare-starlette' else '1.00×'} "
            f"| {ratio(r['per_s'], lg_rate)} |"
        )
    if lg:
        out.append(
            f"| LangGraph dev (n10) | httpx, 32 conns | {fmt(lg['runs_per_s'])} | {fmt(lg['post_p50_ms'], 2)} "
            f"| {fmt(lg['post_p99_ms'], 2)} | – | 1.00× |"
        )
    if muxi:
        lat = muxi.get("lat_ms", {})
        out.append(
            f"| MUXI runtime (trigger) | httpx, 32 conns | {fmt(muxi.get('accepted_per_s'))} "
            f"| {fmt(lat.get('p50'))} | {fmt(lat.get('p99'))} | – "
            f"| {ratio(muxi.get('accepted_per_s') or 0, lg_rate)} |"
        )
    return out


def worker_table(errand: list[dict[str, Any]], peers: list[dict[str, Any]]) -> list[str]:
    out = [
        "| system / setting | B drain tasks/s | C pickup p50 ms | C p99 ms | D 1000×1 s total s | D peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    drain = next((r for r in errand if r["bench"] == "drain"), {})
    pick = next((r for r in errand if r["bench"] == "pickup" and not r.get("cross_process")), {})
    io = next((r for r in errand if r["bench"] == "io"), {})
    storage = drain.get("storage") or pick.get("storage") or "sqlite"
    out.append(
        f"| **errand** ({storage}, 1 process) | {fmt(drain.get('drain_per_s'))} | {fmt(pick.get('p50_ms'), 2)} "
        f"| {fmt(pick.get('p99_ms'), 2)} | {fmt(io.get('total_s'), 2)} | {fmt(io.get('peak_rss_mb'))} |"
    )
    keys = sorted({(r["peer"], r["variant"]) for r in peers if "peer" in r})
    for peer, variant in keys:
        rows = {r["workload"]: r for r in peers if r.get("peer") == peer and r.get("variant") == variant}
        b, c, d = rows.get("B", {}), rows.get("C", {}), rows.get("D", {})
        d_total = d.get("total_s")
        if d_total is None and d.get("est_total_s") is not None:
            d_total = f"capped (≈{d['est_total_s']:.0f})"
        out.append(
            f"| {peer} {variant} | {fmt(b.get('tasks_per_s'))} | {fmt(c.get('p50_ms'), 2)} "
            f"| {fmt(c.get('p99_ms'), 2)} | {fmt(d_total, 2)} | {fmt(d.get('peak_rss_mb'))} |"
        )
    return out


def main() -> None:
    prefix = sys.argv[1]
    errand = load(Path(prefix + ".errand.jsonl"))
    peers = load(Path(prefix + ".peers.jsonl"))
    muxi_rows = load(Path(prefix + ".muxi.json"))
    muxi = muxi_rows[0] if muxi_rows else {}
    lines = ["### HTTP async submit (same run)", "", *submit_table(errand, peers, muxi), ""]
    lines += ["### Worker workloads (same run; peers as in ../shared/bench-peers)", ""]
    lines += [*worker_table(errand, peers), ""]
    burst = next((r for r in errand if r["bench"] == "burst"), None)
    if burst:
        lines.append(
            f"Burst: {burst['accepted']:,} of {burst['submitted']:,} submits accepted "
            f"({burst['accepted_per_s']:,.0f}/s), {burst['completed']:,} completed, **{burst['lost']} lost**."
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
