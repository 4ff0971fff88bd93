"""api.overview: the overview document shaped from the store's rows (schema-checked)."""

from __future__ import annotations

from errand.api.console_schemas import OverviewDocument
from errand.api.overview import overview_document, queue_counts
from errand.console_models import CountRow, DeliveryHealth, MinuteRow, Overview, WorkerRow
from errand.store.rollup import bucket_upper, window_start

NOW = 1_800_000_030.0


def test_queue_counts_by_status_agent_and_top_users() -> None:
    rows = (
        CountRow("pending", "a", "u1", 2),
        CountRow("pending", "b", "u1", 1),
        CountRow("processing", "a", "u2", 1),
        CountRow("completed", "a", None, 7),
        *(CountRow("pending", "a", f"x{i:02d}", 1) for i in range(25)),
    )
    got = queue_counts(rows)
    assert got["by_status"] == {"pending": 28, "processing": 1, "completed": 7, "failed": 0, "cancelled": 0}
    assert got["by_agent"] == [
        {"agent": "a", "pending": 27, "processing": 1},
        {"agent": "b", "pending": 1, "processing": 0},
    ]
    assert got["by_user"][0] == {"user_id": "u1", "pending": 3, "processing": 0}
    assert len(got["by_user"]) == 20


def test_agent_stats_fill_sixty_minutes_and_read_percentiles() -> None:
    minute = window_start(NOW, 3600) + 59 * 60  # the current minute
    seen = Overview(
        generated_at=NOW,
        counts=(),
        oldest_pending_at=NOW - 12.5,
        running=(),
        minutes=(MinuteRow(minute, "a", "completed", 5, 9), MinuteRow(minute, "a", "failed", 30, 1)),
        deliveries=DeliveryHealth(1, 2, 3, 4),
        workers=(WorkerRow("w1", "host", 42, NOW - 100, 2, NOW + 25), WorkerRow("w2", "h2", 7, NOW - 5, 0)),
    )
    doc = overview_document(seen, ["a", "idle"], 30.0)
    OverviewDocument.model_validate(doc)
    assert doc["queue"]["oldest_pending_age_seconds"] == 12.5
    a, idle = doc["agents"]
    assert (a["completed"], a["failed"], a["failure_rate"]) == (9, 1, 0.1)
    assert a["p50_seconds"] == bucket_upper(5) and a["p95_seconds"] == bucket_upper(30)
    assert len(a["per_minute"]) == 60 and a["per_minute"][-1] == {"t": minute, "completed": 9, "failed": 1}
    assert idle["failure_rate"] is None and idle["p50_seconds"] is None
    assert doc["deliveries"] == {"pending": 1, "failed": 2, "delivered_last_hour": 3, "failed_last_hour": 4}
    assert doc["workers"] == [
        {
            "worker_id": "w1",
            "host": "host",
            "pid": 42,
            "started_at": NOW - 100,
            "last_seen": NOW - 5,  # the lease it renewed then runs until NOW + 25
            "leases_until": NOW + 25,
            "running": 2,
        },
        {
            "worker_id": "w2",
            "host": "h2",
            "pid": 7,
            "started_at": NOW - 5,
            "last_seen": None,  # idle: nothing renewed, so nothing seen but its registration
            "leases_until": None,
            "running": 0,
        },
    ]
