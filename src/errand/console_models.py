"""Values of the console's reads and sessions: what the store returns for the dashboard.

A leaf beside `models`: plain frozen dataclasses, no behaviour but their shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from errand.models import Delivery, Request

ROLES = ("admin", "viewer")
"""Who may sign in to the console: an admin key, or a read-only viewer key."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """One console sign-in. The cookie's value is never stored: only its SHA-256 (`id_hash`),
    so a copy of the database signs nobody in."""

    id_hash: str
    key_id: str
    role: str
    csrf_token: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class Match:
    """The request list's optional filters, combined with AND: agent, kind, and created_at in
    [since, until) (epoch seconds)."""

    agent: str | None = None
    kind: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class CountRow:
    """Live requests of one (status, agent, user) group; `user_id` is None for finished ones."""

    status: str
    agent: str | None
    user_id: str | None
    n: int


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """Finishes of one agent in one minute, in one status, whose durations fell in one bucket."""

    minute: int
    agent: str
    status: str
    bucket: int
    n: int


@dataclass(frozen=True, slots=True)
class RunningRow:
    """A request running now, and the worker whose lease it is under."""

    request: Request
    worker_id: str | None


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A registered worker, its leases now, and the latest expiry among them: a worker sets
    each lease to now + lease_seconds when it claims and every lease_seconds/3 while it runs,
    so an expiry that stops moving (or lies in the past) is a worker that stopped renewing."""

    worker_id: str
    host: str
    pid: int
    registered_at: float
    running: int
    leases_until: float | None = None  # None: it holds no lease


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    """Webhook deliveries waiting or failed now, and the attempts of the window that succeeded
    or failed."""

    pending: int
    failed: int
    delivered_in_window: int
    failed_in_window: int


@dataclass(frozen=True, slots=True)
class Overview:
    """What GET /v1/admin/overview is built from, read by `Store.overview` in bounded queries."""

    generated_at: float
    counts: tuple[CountRow, ...]
    oldest_pending_at: float | None
    running: tuple[RunningRow, ...]
    minutes: tuple[MinuteRow, ...]
    deliveries: DeliveryHealth
    workers: tuple[WorkerRow, ...]


DELIVERY_STATES = ("pending", "delivered", "failed")
"""The states GET /v1/admin/deliveries filters by (`pending` includes `retrying`)."""


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: list[Delivery]
    next_cursor: str | None
