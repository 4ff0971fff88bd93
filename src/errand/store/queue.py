"""The queue's shape for the metrics gauges: how many non-terminal requests by status and agent,
and the oldest pending one, read in one statement both backends share.

The statement reads only the `requests_queue` partial index (migration 0010): its cost grows
with the queue, never with the finished history (bench/metrics_bench.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterable

from errand.models import QueueStats, Status
from errand.store.rules import Values, sql_in

__all__ = ["QUEUE_SQL", "QUEUE_STATUSES", "to_queue_stats"]

QUEUE_STATUSES: tuple[Status, ...] = (Status.PENDING, Status.PROCESSING)
"""The statuses a request waits or runs in (the index predicate of migration 0010)."""

QUEUE_SQL = (
    "SELECT status, agent, COUNT(*) AS n, MIN(created_at) AS oldest FROM requests "
    f"WHERE status IN {sql_in(QUEUE_STATUSES)} GROUP BY status, agent"
)
"""One scan of the partial index: counts per (status, agent), and each group's oldest."""


def to_queue_stats(rows: Iterable[Values]) -> QueueStats:
    """QueueStats from QUEUE_SQL's rows (groups without rows are absent: zero)."""
    depth: dict[tuple[str, str | None], int] = {}
    oldest: float | None = None
    for row in rows:  # sqlite3 rows and asyncpg Records alike, read by position
        status, agent, first = str(row[0]), row[1], row[3]
        depth[(status, agent)] = int(row[2])
        if status == Status.PENDING.value and first is not None:
            oldest = first if oldest is None else min(oldest, float(first))
    return QueueStats(depth=depth, oldest_pending_at=None if oldest is None else float(oldest))
