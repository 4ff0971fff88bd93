"""Agents used by the benchmarks: each writes one marker line like the peers' tasks do.

The message is JSON {"tid": int, "t_enq": float, "sleep": float}; the marker line is
"<tid> <t_enq> <t_start> <t_end>" appended to $BENCH_MARK_FILE (an O_APPEND write, atomic).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

_fd: int | None = None


def _mark(tid: int, t_enq: float, t_start: float) -> None:
    global _fd
    if _fd is None:
        _fd = os.open(os.environ["BENCH_MARK_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%d %.6f %.6f %.6f\n" % (tid, t_enq, t_start, time.time()))


def _parse(message: str) -> dict[str, Any]:
    try:
        data = json.loads(message)
    except ValueError:
        return {"tid": 0, "t_enq": 0.0}
    return data if isinstance(data, dict) else {"tid": 0, "t_enq": 0.0}


async def noop(message: str, ctx: Any) -> str:
    """Does nothing but record that it ran."""
    t_start = time.time()
    d = _parse(message)
    _mark(int(d.get("tid", 0)), float(d.get("t_enq", 0.0)), t_start)
    return "ok"


async def sleep(message: str, ctx: Any) -> str:
    """Awaits `sleep` seconds of I/O (asyncio.sleep), then records that it ran."""
    t_start = time.time()
    d = _parse(message)
    await asyncio.sleep(float(d.get("sleep", 1.0)))
    _mark(int(d.get("tid", 0)), float(d.get("t_enq", 0.0)), t_start)
    return "ok"
