"""WorkerSettings: what the worker and each attempt read from the formation, plus test knobs.

Its own module so that the worker loop (engine/worker.py) and one attempt (engine/attempt.py)
both depend on it without depending on each other's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from errand.config import Config, RetryPolicy
from errand.limits_config import claim_limits
from errand.models import Limits

__all__ = ["WorkerSettings"]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything the worker reads from the formation, plus knobs tests and operators turn."""

    concurrency: int = 64
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    task_timeout: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    result_ttl: float = 86400.0
    tombstone_ttl: float = 30 * 86400.0
    housekeeping_interval: float = 300.0
    """How often expired results are purged (async.purge_interval; requeueing lost leases runs
    every lease/2, on its own schedule)."""
    liveness_interval: float = 1.0
    """How often `run()` looks for dead workers to take over (0: never; lease expiry only)."""
    shutdown_grace: float = 10.0
    record_retry_seconds: float = 120.0
    """How long an outcome write is retried while the database is unavailable."""
    block_warning_seconds: float = 1.0
    """The watchdog logs an event loop blocked this long (0: off); see engine/watchdog.py."""
    max_result_bytes: int = 10 * 1024 * 1024
    """A larger result (as JSON) fails the request: async.max_result_bytes."""
    no_retry_delay: bool = False
    """Testing switch: retries are due at once instead of after the backoff delay."""
    limits: Limits = field(default_factory=Limits)
    """What each claim obeys (fairness, caps across processes): config `limits:` + agents."""
    agent_timeouts: dict[str, float] = field(default_factory=dict)
    """agents[].task_timeout, where set (else task_timeout)."""
    agent_retries: dict[str, RetryPolicy] = field(default_factory=dict)
    """agents[].retry, where set (else retry)."""

    def timeout_for(self, agent_id: str | None) -> float:
        """The attempt timeout of an agent: its own task_timeout, else the workflow's."""
        return self.agent_timeouts.get(agent_id or "", self.task_timeout)

    def retry_for(self, agent_id: str | None) -> RetryPolicy:
        """The retry policy of an agent: its own, else the workflow's."""
        return self.agent_retries.get(agent_id or "", self.retry)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if min(self.lease_seconds, self.poll_interval, self.task_timeout) <= 0:
            raise ValueError("lease_seconds, poll_interval and task_timeout must be positive")
        if self.liveness_interval < 0:
            raise ValueError("liveness_interval must be >= 0")

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> WorkerSettings:
        """The formation's workers/workflow/async sections; keyword overrides win."""
        settings = cls(
            concurrency=config.workers.concurrency,
            lease_seconds=config.workers.lease_seconds,
            poll_interval=config.workers.poll_interval,
            block_warning_seconds=config.workers.block_warning_seconds,
            task_timeout=config.workflow.task_timeout,
            retry=config.workflow.retry,
            result_ttl=config.async_.result_ttl,
            tombstone_ttl=config.async_.tombstone_ttl,
            liveness_interval=config.workers.liveness_interval,
            housekeeping_interval=config.async_.purge_interval,
            max_result_bytes=config.async_.max_result_bytes,
            limits=claim_limits(config),
            agent_timeouts={a.id: a.task_timeout for a in config.agents if a.task_timeout is not None},
            agent_retries={a.id: a.retry for a in config.agents if a.retry is not None},
        )
        return replace(settings, **overrides) if overrides else settings
