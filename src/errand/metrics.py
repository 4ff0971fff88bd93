"""The instrumented Prometheus metrics: one home for every name the code counts into.

Names are stable (the README's metrics table lists each one). Everything here is per process:
it counts what this process did, and Prometheus tells processes apart by `instance`;
`errand_process_info` says what each process is. The queue gauges, which read the shared
truth from the database at scrape time, live with the scrape (`api/scrape.py`).

A leaf: the API, the engine and the delivery layer all count into these, so they sit below all
of them. Agent labels are agent ids from the formation (bounded); `UNROUTED` is a request
that names no agent and waits for the router.
"""

from __future__ import annotations

from collections.abc import Container

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ATTEMPT_SECONDS",
    "INPUT_ASKED",
    "INPUT_EXPIRED",
    "IN_FLIGHT",
    "PROCESS_INFO",
    "REQUESTS",
    "RETRIES",
    "SCHEDULE_FIRINGS",
    "SSE_STREAMS",
    "STRAY_THREADS",
    "SUBMIT_SECONDS",
    "TIMEOUTS",
    "UNROUTED",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_SECONDS",
    "agent_label",
]

UNROUTED = "unrouted"
"""The agent label of a request that names no agent (the router picks one when it runs)."""

REQUESTS = Counter(
    "errand_requests",
    "Requests by kind, agent and the status they reached here: accepted (a new submit), "
    "completed, failed (by a worker, or by a takeover that found its attempts spent), "
    "cancelled (by the API)",
    ["kind", "agent", "status"],
)
SUBMIT_SECONDS = Histogram(
    "errand_submit_duration_seconds",
    "Time to make one new request durable (store.submit: the committed row), by kind",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
IN_FLIGHT = Gauge("errand_in_flight", "Attempts running in this process now, by agent", ["agent"])
ATTEMPT_SECONDS = Histogram(
    "errand_attempt_duration_seconds",
    "Wall time of one attempt in this process, claim to recorded outcome (completed, retried, "
    "failed, cancelled, input_required, lease_lost, abandoned, unrecorded)",
    ["agent", "outcome"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, float("inf")),
)
INPUT_ASKED = Counter(
    "errand_input_requests",
    "Questions handlers asked (the request paused in input_required), by agent",
    ["agent"],
)
INPUT_EXPIRED = Counter(
    "errand_input_expired",
    "Requests ended because their question expired unanswered, by status reached",
    ["status"],
)
RETRIES = Counter("errand_retries", "Failed attempts scheduled to run again, by agent", ["agent"])
TIMEOUTS = Counter(
    "errand_timeouts", "Attempts stopped by workflow.task_timeout, by agent (retried or failed)", ["agent"]
)
STRAY_THREADS = Gauge(
    "errand_stray_attempt_threads",
    "Attempts whose sync thread still runs after the attempt timed out, failed or was stopped; "
    "each keeps its worker slot (and holds back its retry) until the thread returns",
)
WEBHOOK_DELIVERIES = Counter(
    "errand_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retry (another attempt is scheduled), "
    "failed (attempts used up), refused (the URL is refused at send time: not retried)",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "errand_webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt (resolve + connect + answer), by outcome",
    ["outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SCHEDULE_FIRINGS = Counter(
    "errand_schedule_firings",
    "Fire times this process's scheduler (or POST /v1/schedules/{id}/run) handled, by outcome: "
    "fired (a request made), skipped (overlap: skip), failed (the request could not be built), "
    "passed_over (missed while down, catch_up: skip), disabled (max_failures reached), lost "
    "(another process fired that time first)",
    ["outcome"],
)
SSE_STREAMS = Gauge("errand_sse_streams", "Server-Sent Event streams open in this process")
PROCESS_INFO = Gauge(
    "errand_process_info",
    "1 for each part this process runs: role api (serves HTTP) or worker (claims and runs "
    "requests, delivers webhooks); process is its worker id (or api-<pid>)",
    ["process", "role"],
)


def agent_label(agent: str | None, known: Container[str] | None = None) -> str:
    """The agent label: UNROUTED for None; else the id, or "unknown" when `known` (the
    registry) lacks it, so a stray id can never grow the label set."""
    if agent is None:
        return UNROUTED
    return agent if known is None or agent in known else "unknown"
