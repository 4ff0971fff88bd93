"""GET /v1/admin/overview (admin or viewer): the console's live picture of the queue, what runs
now, the last hour per agent, webhook health and the workers.

Every part comes from one bounded read (`Store.overview`): counts from the count rows kept by
triggers (not a COUNT over the table), the last hour from the per-minute rollup written by each
finish, running requests from the partial index of the queue. This module only shapes them.
`by_status` counts live requests as GET /v1/requests lists them (tombstones out; a finished
request past result_ttl is counted until the next purge drops it, at most async.purge_interval).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Owner, require_admin
from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.console_models import CountRow, MinuteRow, Overview, RunningRow, WorkerRow
from errand.models import Status
from errand.store.rollup import percentile, window_start

WINDOW_S = 3600.0
TOP_USERS = 20
QUEUED = (Status.PENDING.value, Status.PROCESSING.value)


async def overview(request: Request, owner: Owner, ctx: ApiContext) -> Response:
    """GET /v1/admin/overview."""
    require_admin(owner)
    seen = await ctx.store.overview(WINDOW_S)
    agents = [a.id for a in ctx.config.agents]
    return json_response(overview_document(seen, agents, ctx.config.workers.lease_seconds))


def overview_document(seen: Overview, agents: list[str], lease_seconds: float) -> dict[str, Any]:
    """The overview document (its schema: console_schemas.OverviewDocument). `lease_seconds`:
    the configured lease (`workers.lease_seconds`), what a claim or heartbeat adds to now."""
    oldest = seen.oldest_pending_at
    return {
        "generated_at": seen.generated_at,
        "queue": {
            **queue_counts(seen.counts),
            "oldest_pending_age_seconds": None if oldest is None else max(0.0, seen.generated_at - oldest),
        },
        "running": [running_item(r) for r in seen.running],
        "agents": agent_stats(seen.minutes, agents, seen.generated_at),
        "deliveries": {
            "pending": seen.deliveries.pending,
            "failed": seen.deliveries.failed,
            "delivered_last_hour": seen.deliveries.delivered_in_window,
            "failed_last_hour": seen.deliveries.failed_in_window,
        },
        "workers": [worker_item(w, lease_seconds) for w in seen.workers],
    }


def worker_item(row: WorkerRow, lease_seconds: float) -> dict[str, Any]:
    """A worker; `last_seen` is its latest claim or lease renewal (its newest lease expiry less
    the lease), None while it holds no lease: an idle worker writes nothing to be seen by."""
    until = row.leases_until
    return {
        "worker_id": row.worker_id,
        "host": row.host,
        "pid": row.pid,
        "started_at": row.registered_at,
        "last_seen": None if until is None else until - lease_seconds,
        "leases_until": until,
        "running": row.running,
    }


def queue_counts(counts: tuple[CountRow, ...]) -> dict[str, Any]:
    """by_status (every status), by_agent and by_user (the queue: pending, processing)."""
    by_status = {s.value: 0 for s in Status}
    by_agent: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(QUEUED, 0))
    by_user: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(QUEUED, 0))
    for c in counts:
        by_status[c.status] = by_status.get(c.status, 0) + c.n
        if c.status in QUEUED:
            by_agent[c.agent][c.status] += c.n
            if c.user_id is not None:
                by_user[c.user_id][c.status] += c.n
    users = sorted(by_user.items(), key=lambda kv: (-kv[1]["pending"], -kv[1]["processing"], kv[0]))
    return {
        "by_status": by_status,
        "by_agent": [{"agent": a, **n} for a, n in sorted(by_agent.items(), key=lambda kv: kv[0] or "")],
        "by_user": [{"user_id": u, **n} for u, n in users[:TOP_USERS]],
    }


def running_item(row: RunningRow) -> dict[str, Any]:
    req = row.request
    progress = (
        None if req.progress is None else {"percent": req.progress.percent, "message": req.progress.message}
    )
    return {
        "request_id": req.id,
        "agent": req.agent,
        "user_id": req.user_id,
        "kind": req.kind,
        "worker_id": row.worker_id,
        "attempt": req.attempt,
        "progress": progress,
        "started_at": req.started_at,
    }


def agent_stats(minutes: tuple[MinuteRow, ...], agents: list[str], now: float) -> list[dict[str, Any]]:
    """Per agent over the window: finishes, failure rate, p50/p95 (bucket bounds), and one
    point per minute (zeros included, oldest first) for the charts."""
    first = window_start(now, WINDOW_S)
    slots = [first + 60 * i for i in range(int(WINDOW_S // 60))]
    per: dict[str, list[MinuteRow]] = {a: [] for a in agents}
    for m in minutes:
        per.setdefault(m.agent, []).append(m)
    out = []
    for agent, rows in sorted(per.items()):
        completed = sum(m.n for m in rows if m.status == "completed")
        failed = sum(m.n for m in rows if m.status == "failed")
        buckets: dict[int, int] = defaultdict(int)
        points = {t: {"t": t, "completed": 0, "failed": 0} for t in slots}
        for m in rows:
            buckets[m.bucket] += m.n
            if m.minute in points:
                points[m.minute][m.status] += m.n
        finished = completed + failed
        out.append(
            {
                "agent": agent,
                "completed": completed,
                "failed": failed,
                "failure_rate": None if finished == 0 else failed / finished,
                "p50_seconds": percentile(buckets.items(), 0.5),
                "p95_seconds": percentile(buckets.items(), 0.95),
                "per_minute": list(points.values()),
            }
        )
    return out
