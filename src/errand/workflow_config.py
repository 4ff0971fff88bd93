"""The `workflow:` and `workers:` sections of formation.yaml: task timeout, retries, workers.

Its own module so config.py stays one screenful per concern; config.py composes it into Config
(and remains the only reader of os.environ).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from errand.durations import Duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetryPolicy(_Section):
    max_attempts: int = Field(default=3, ge=1, le=100)
    """Attempts in all (the first one included) before a transient failure fails the request."""
    initial_delay: float = Field(default=1.0, ge=0)
    """Seconds before the first retry."""
    max_delay: float = Field(default=60.0, ge=0)
    """The longest wait between attempts (a longer Retry-After from a provider is honoured)."""
    backoff_factor: float = Field(default=2.0, ge=1)
    """Retry n waits min(max_delay, initial_delay * backoff_factor**(n-1))."""
    jitter: float = Field(default=0.25, ge=0, le=1)
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]."""


class WorkflowConfig(_Section):
    task_timeout: Duration = 300.0
    """Seconds one attempt may run; past it the attempt is stopped (`Task exceeded timeout (Ns)`,
    transient: retried)."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """The retry policy of every agent without its own `retry`."""


class WorkersConfig(_Section):
    concurrency: int = Field(default=64, ge=1, le=100_000)
    """Attempts running at once in each worker process (`errand serve` with workers, or `errand worker`)."""
    lease_seconds: float = Field(default=30.0, gt=0)
    """A claim's lease, renewed every lease_seconds / 3; a worker silent this long loses its requests to
    another worker."""
    poll_interval: float = Field(default=0.5, gt=0)
    """Safety-net poll when no wake-up arrives (and for writes by other SQLite processes)."""
    block_warning_seconds: Duration = 1.0
    """An event loop blocked this long (an inline agent calling time.sleep in `async def`) is
    logged as a WARNING with the blocking stack and the running request ids; 0 turns it off."""
    kill_grace_seconds: Duration = 5.0
    """An `isolation: process` agent stopped (cancel, task_timeout, shutdown) gets SIGTERM, then
    SIGKILL if its process is still alive this many seconds later."""
    liveness_interval: float = Field(default=1.0, ge=0, le=3600)
    """Seconds between looks for dead workers, whose requests are then taken over at once: a
    worker process of this host that is gone (pid + start time), or on PostgreSQL a worker
    whose database session ended. 0: off, a dead worker's requests wait for lease_seconds."""
