"""Scheduling values: the limits every claim obeys, why a request waits, the queue's gauges. No I/O.

A leaf split from models.py (which re-exports these names); it imports no errand module.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limits:
    """What `Store.claim` must respect across every process (None: no cap)."""

    max_running: int | None = None
    max_running_per_user: int | None = None
    agent_caps: dict[str, int] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    """Fairness-key weights (default 1): a key of weight 2 gets two turns per round."""
    fair: bool = True
    """False: the plain oldest-first claim of old (no fairness, no caps), kept for comparison."""

    @property
    def capped(self) -> bool:
        return self.max_running is not None or self.max_running_per_user is not None or bool(self.agent_caps)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """Why a pending request waits (`waiting_on`) and about how many run before it."""

    waiting_on: str | None
    queue_position: int | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The queue now, as the metrics gauges show it: non-terminal requests counted by
    (status, agent) (agent None: not routed yet), and the created_at of the oldest pending one."""

    depth: dict[tuple[str, str | None], int]
    oldest_pending_at: float | None
