"""The response bodies of the console's routes (sessions, overview, cross-request lists, bulk
actions): what /openapi.json documents for them. Beside api/schemas.py, same rules: the answers
are plain dicts, these models their schema, and tests validate real answers against them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from errand.api.schemas import DeliveryDocument


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionDocument(_Doc):
    """The console session: its role, the CSRF token its changes must send, its expiry."""

    role: Literal["admin", "viewer"]
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change made with the cookie.")
    expires_at: float = Field(description="Epoch seconds; the cookie's Max-Age ends at the same time.")


class QueueCounts(_Doc):
    pending: int
    processing: int


class AgentQueue(QueueCounts):
    agent: str | None


class UserQueue(QueueCounts):
    user_id: str


class QueueOverview(_Doc):
    by_status: dict[str, int] = Field(
        description="Live requests per status, as GET /v1/requests?status= lists them."
    )
    by_agent: list[AgentQueue]
    by_user: list[UserQueue] = Field(description="The 20 users with the most pending requests.")
    oldest_pending_age_seconds: float | None


class ProgressBrief(_Doc):
    percent: float | None
    message: str | None


class RunningItem(_Doc):
    request_id: str
    agent: str | None
    user_id: str
    kind: str
    worker_id: str | None
    attempt: int
    progress: ProgressBrief | None
    started_at: float | None


class MinutePoint(_Doc):
    t: int = Field(description="The minute's start, epoch seconds.")
    completed: int
    failed: int


class AgentStats(_Doc):
    agent: str
    completed: int
    failed: int
    failure_rate: float | None
    p50_seconds: float | None = Field(description="A bucket bound: at most 25 % above the true value.")
    p95_seconds: float | None
    per_minute: list[MinutePoint] = Field(description="The last 60 minutes, oldest first.")


class DeliveryHealthDocument(_Doc):
    pending: int = Field(description="Deliveries not sent yet (pending or retrying).")
    failed: int = Field(description="Deliveries whose retries are spent.")
    delivered_last_hour: int = Field(description="Delivery attempts of the last hour that succeeded.")
    failed_last_hour: int = Field(description="Delivery attempts of the last hour that failed.")


class WorkerItem(_Doc):
    worker_id: str
    host: str
    pid: int
    started_at: float = Field(description="When the worker registered.")
    last_seen: float | None = Field(
        description="Its latest claim or lease renewal (a running worker renews every "
        "workers.lease_seconds/3): its newest lease expiry less this server's workers.lease_seconds. "
        "Null while it holds no lease: no heartbeat time is kept for an idle worker (its death is "
        "seen from its pid and start time, or its PostgreSQL session lock); see started_at."
    )
    leases_until: float | None = Field(
        description="The latest expiry among its leases (null: none). In the past: it stopped renewing."
    )
    running: int


class OverviewDocument(_Doc):
    """GET /v1/admin/overview: the queue, what runs now, the last hour per agent, webhooks, workers."""

    generated_at: float
    queue: QueueOverview
    running: list[RunningItem] = Field(description="The newest 50 running requests.")
    agents: list[AgentStats]
    deliveries: DeliveryHealthDocument
    workers: list[WorkerItem]


class AdminDeliveryDocument(DeliveryDocument):
    request_id: str


class AdminDeliveryList(_Doc):
    """GET /v1/admin/deliveries: deliveries across requests, newest first."""

    deliveries: list[AdminDeliveryDocument]
    count: int
    next_cursor: str | None


class BulkMatch(_Doc):
    """A dry run: how many requests the filter matches now (send it back as `expect`)."""

    matched: int


class BulkCancelled(_Doc):
    """A bulk cancel run: cancelled, skipped (ended meanwhile), and matched beyond this call's 1,000."""

    cancelled: int
    skipped: int
    remaining: int


class BulkRedelivered(_Doc):
    """A bulk redeliver run: deliveries queued, and requests skipped (no webhook, gone, unfinished)."""

    redelivered: int
    skipped: int
