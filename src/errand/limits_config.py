"""The `limits:` section of formation.yaml: fair claiming, caps, queue cap, priority aging.

Its own module so config.py stays one screenful per concern; config.py composes it into Config
(and remains the only reader of os.environ). `to_limits` turns it, with the agents' own
`max_concurrency`, into the `models.Limits` every claim obeys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from errand.models import Limits

if TYPE_CHECKING:
    from errand.config import Config


class LimitsConfig(BaseModel):
    """Scheduling limits shared by every process on the database (documented defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    fair: bool = True
    """Claim round-robin across fairness keys (users, or a request's `fairness_key`); false:
    the old global oldest-first claim, without caps (kept to compare)."""
    max_running: int | None = Field(default=None, ge=1)
    """Requests running at once in the whole formation, across all processes (None: no cap)."""
    max_running_per_user: int | None = Field(default=None, ge=1)
    """Requests of one user (client key + user id) running at once (None: no cap)."""
    max_queued_per_user: int | None = Field(default=None, ge=1)
    """Pending requests one user may have; a submit past it answers 429 with Retry-After."""
    queue_full_retry_after: float = Field(default=5.0, gt=0, le=3600)
    """Seconds the 429 of a full queue tells the client to wait (Retry-After)."""
    priority_aging_seconds: float = Field(default=60.0, gt=0, le=86400)
    """Waiting this long is worth one priority level: a priority-5 request submitted at t sorts
    with a priority-1 request submitted at t + 4 x this, so nothing waits forever."""
    weights: dict[str, float] = Field(default_factory=dict)
    """Fairness-key weights (default 1): a key of weight 3 gets three turns per round."""

    def to_limits(self, agent_caps: dict[str, int]) -> Limits:
        """What each claim obeys: these caps and weights, and each agent's max_concurrency."""
        return Limits(
            max_running=self.max_running,
            max_running_per_user=self.max_running_per_user,
            agent_caps=dict(agent_caps),
            weights=dict(self.weights),
            fair=self.fair,
        )


def claim_limits(config: Config) -> Limits:
    """What every claim obeys: `limits:` and each agent's `max_concurrency`."""
    caps = {a.id: a.max_concurrency for a in config.agents if a.max_concurrency is not None}
    return config.limits.to_limits(caps)
