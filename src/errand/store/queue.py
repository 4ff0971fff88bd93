"""The queue's shape for the metrics gauges: non-terminal requests by status and agent, and the
oldest pending one, kept cheap to read at any queue size.

Counts are not a COUNT over the queue (1.6 s on SQLite, 0.6 s on PostgreSQL at a million
pending rows: bench/metrics_bench.py). Triggers of migration 0010 append a +1/-1 row to
`queue_counts` in the transaction of every status change; a read sums those rows (grouped by
status and agent), and when it saw more than FOLD_AT of them the store folds them into one row
per group, so a read costs the changes since the last fold. Appending never makes writers wait
on a shared counter row. The oldest pending request is one probe of the `requests_queue`
partial index. Both dialects' statements live here, beside the rule that reads their rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from errand.models import QueueStats, Status
from errand.store.rules import Values, sql_in

__all__ = ["FOLD_AT", "PG_FOLD", "QUEUE_SQL", "QUEUE_STATUSES", "SQLITE_FOLD", "to_queue_stats"]

QUEUE_STATUSES: tuple[Status, ...] = (Status.PENDING, Status.PROCESSING, Status.INPUT_REQUIRED)
"""The statuses a request waits or runs in (the trigger conditions of migrations 0010, 0014)."""
_INDEXED = (Status.PENDING, Status.PROCESSING)
"""The predicate of the `requests_queue` partial index, spelled out for the planner."""

FOLD_AT = 512
"""A read that summed more count rows than this asks the store to fold them."""

QUEUE_SQL = (
    "SELECT status, agent, SUM(n) AS n, COUNT(*) AS changes, "
    f"(SELECT MIN(created_at) FROM requests WHERE status IN {sql_in(_INDEXED)} "
    "AND status = 'pending') AS oldest "
    "FROM queue_counts GROUP BY status, agent"
)
"""One statement (one snapshot): each group's count and rows, and the oldest pending request
(the index predicate is spelled out, so SQLite's planner picks the partial index, not a walk of
requests_by_created past every finished request)."""

SQLITE_FOLD = (
    "INSERT INTO queue_counts (status, agent, n) SELECT status, agent, SUM(n) FROM queue_counts "
    "WHERE id <= :last GROUP BY status, agent HAVING SUM(n) <> 0",
    "DELETE FROM queue_counts WHERE id <= :last",
)
"""Run on the one writer (nothing interleaves), with :last = MAX(id) read first."""

PG_FOLD = (
    "WITH moved AS (DELETE FROM queue_counts RETURNING status, agent, n) "
    "INSERT INTO queue_counts (status, agent, n) "
    "SELECT status, agent, SUM(n) FROM moved GROUP BY status, agent HAVING SUM(n) <> 0"
)
"""One statement: exactly the rows it deletes are summed back, whatever commits meanwhile
(a concurrent fold blocks on the rows, then skips them), so the totals never change."""


def to_queue_stats(rows: Iterable[Values]) -> tuple[QueueStats, int]:
    """QueueStats from QUEUE_SQL's rows (groups at zero left out), and how many count rows
    were summed (compare with FOLD_AT)."""
    depth: dict[tuple[str, str | None], int] = {}
    oldest: float | None = None
    changes = 0
    for row in rows:  # sqlite3 rows and asyncpg Records alike, read by position
        changes += int(row[3])
        oldest = None if row[4] is None else float(row[4])
        if int(row[2]) != 0:
            depth[(str(row[0]), row[1])] = int(row[2])
    return QueueStats(depth=depth, oldest_pending_at=oldest), changes
