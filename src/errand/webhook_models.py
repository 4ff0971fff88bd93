"""A request's webhook: the outbox item due to be sent, its delivery and attempts. No I/O.

Beside models.py (which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A webhook delivery due to be sent: the body is fixed when the request ends."""

    id: str  # stable per delivery: the `webhook-id` receivers dedupe on
    request_id: str
    url: str
    body: dict[str, Any]
    attempt: int  # attempts made so far (0 before the first); the dispatcher owns the limit


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """State of a request's webhook delivery: pending | retrying | delivered | failed."""

    id: str
    request_id: str
    url: str
    state: str
    attempts: list[DeliveryAttempt]
    next_attempt_at: float | None
    created_at: float
