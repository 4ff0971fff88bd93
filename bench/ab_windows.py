"""Interleaved A/B windows: one measurement on two sides taking turns (A B, B A, A B, ...), so a
change of the machine's load during the run (2 shared cores) weighs on both sides alike, and the
ratio of the sides' medians answers "does B cost more than A" where slices taken one after the
other could not (their swings followed the load, not what changed between them).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Measure = Callable[[], Awaitable[tuple[int, float, list[float]]]]
"""One window of a side: (operations done, seconds, latency of each, s)."""


@dataclass(frozen=True)
class Window:
    side: str
    round: int
    at: str
    """UTC time of the window's start."""
    load1: float
    """The 1-minute load average at the window's end."""
    count: int
    seconds: float
    latencies: list[float]
    io: tuple[int, int] = (0, 0)
    """Bytes this process read and wrote through system calls during the window (/proc/self/io
    rchar, wchar: with SQLite, the store's own page reads, WAL writes and checkpoints)."""

    def kb_per_op(self, which: int) -> float:
        return self.io[which] / 1024 / max(self.count, 1)

    @property
    def per_s(self) -> float:
        return self.count / max(self.seconds, 1e-9)

    def ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def io_bytes() -> tuple[int, int]:
    try:
        with open("/proc/self/io") as f:
            fields = dict(line.split(": ") for line in f.read().splitlines())
    except OSError:
        return (0, 0)
    return int(fields["rchar"]), int(fields["wchar"])


async def alternate(
    sides: dict[str, Measure], rounds: int, between: Callable[[str], Awaitable[None]] | None = None
) -> list[Window]:
    """`rounds` windows of each side, the order flipped every round (ABBA...); `between(side)`
    runs before each window of that side, untimed (a refill), and is not part of its figures."""
    names, out = list(sides), []
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            if between is not None:
                await between(name)
            at, before = time.strftime("%H:%M:%S", time.gmtime()), io_bytes()
            count, seconds, latencies = await sides[name]()
            after = io_bytes()
            io = (after[0] - before[0], after[1] - before[1])
            out.append(Window(name, r + 1, at, os.getloadavg()[0], count, seconds, latencies, io))
            print(
                f"  round {r + 1} {name}: {count / max(seconds, 1e-9):,.0f}/s, load1 {out[-1].load1:.2f}",
                flush=True,
            )
    return out


def median(windows: list[Window], side: str, figure: Callable[[Window], float]) -> float:
    return statistics.median(figure(w) for w in windows if w.side == side)


def report(title: str, windows: list[Window], base: str, other: str, latency: str) -> dict[str, float]:
    """Print the windows and the medians as markdown; return other/base of each median."""
    print(f"\n## {title}\n")
    print(
        f"| round | side | start UTC | load1 | done | per s | {latency} p50 ms | p99 ms | KB read / written per op |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for w in windows:
        print(
            f"| {w.round} | {w.side} | {w.at} | {w.load1:.2f} | {w.count:,} | {w.per_s:,.0f} | "
            f"{w.ms(0.5):.2f} | {w.ms(0.99):.2f} | {w.kb_per_op(0):.1f} / {w.kb_per_op(1):.1f} |"
        )
    figures: dict[str, Callable[[Window], float]] = {
        "per_s": lambda w: w.per_s,
        "p50_ms": lambda w: w.ms(0.5),
        "p99_ms": lambda w: w.ms(0.99),
        "load1": lambda w: w.load1,
        "KB read per op": lambda w: w.kb_per_op(0),
        "KB written per op": lambda w: w.kb_per_op(1),
    }
    ratios = {}
    print(f"\n| median of the windows | {base} | {other} | {other} / {base} |\n|---|---|---|---|")
    for name, figure in figures.items():
        a, b = median(windows, base, figure), median(windows, other, figure)
        ratios[name] = b / a if a else float("nan")
        print(f"| {name} | {a:,.2f} | {b:,.2f} | {ratios[name]:.3f} |")
    by_round = {(w.round, w.side): w.per_s for w in windows}
    paired = [by_round[r, other] / by_round[r, base] for r, side in by_round if side == base]
    ratios["paired"] = statistics.median(paired)
    print(
        f"\n{other}/{base} throughput within each round (the two windows back to back): "
        f"median {ratios['paired']:.3f}, range {min(paired):.3f}-{max(paired):.3f}"
    )
    return ratios
