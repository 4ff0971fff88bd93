"""DispatcherSettings: how webhooks are delivered (secret, retries, timeouts, backoff, limits).

Checked when built, so a bad value fails `errand serve` / `errand worker` at start with a
ConfigError rather than at the first delivery.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from errand.backoff import Backoff
from errand.errors import ConfigError
from errand.webhooks import sign

if TYPE_CHECKING:
    from errand.config import Config

__all__ = ["DispatcherSettings"]


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    """How deliveries are made. `retries` counts attempts after the first (1 + retries in all)."""

    formation_id: str
    secret: str = field(repr=False)
    retries: int = 3
    timeout: float = 10.0
    allow_hosts: tuple[str, ...] = ()
    initial_delay: float = 1.0
    max_delay: float = 3600.0
    factor: float = 2.0
    jitter: float = 0.25
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter] (no herds)."""
    concurrency: int = 32
    lease_seconds: float = 60.0
    """How long a claimed delivery is ours; longer than `timeout`, so no one else sends it meanwhile."""
    poll_interval: float = 1.0
    user_agent: str = "errand-webhooks/1"
    _retry: Backoff = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = [
            (not self.secret, "a signing secret is required"),
            (self.retries < 0, "retries must be >= 0"),
            (self.timeout <= 0, "timeout must be > 0"),
            (self.concurrency < 1, "concurrency must be >= 1"),
            (self.lease_seconds <= self.timeout, "lease_seconds must exceed timeout"),
            (self.poll_interval <= 0, "poll_interval must be > 0"),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(f"webhook dispatcher: {message}")
        try:
            retry = Backoff(self.initial_delay, self.max_delay, self.factor, self.jitter)
        except ValueError as exc:
            raise ConfigError(f"webhook dispatcher: {exc}") from None
        object.__setattr__(self, "_retry", retry)
        try:
            sign(b"", self.secret, msg_id="check", timestamp=0)
        except ValueError:
            raise ConfigError(
                "async.webhook_secret: a whsec_ secret must be base64 after the prefix"
            ) from None

    @classmethod
    def from_config(cls, config: Config, secret: str, **overrides: Any) -> DispatcherSettings:
        """Settings from formation.yaml, signing with `secret` (delivery/secret.py chooses it:
        async.webhook_secret, else the database's generated secret)."""
        a = config.async_
        values: dict[str, Any] = {
            "formation_id": config.name,
            "secret": secret,
            "retries": a.webhook_retries,
            "timeout": a.webhook_timeout,
            "allow_hosts": tuple(a.webhook_allow_hosts),
            "initial_delay": a.webhook_initial_delay,
            "max_delay": a.webhook_max_delay,
            "concurrency": a.webhook_concurrency,
            "lease_seconds": max(60.0, 3 * a.webhook_timeout + 10),
            "poll_interval": config.workers.poll_interval,
        }
        values.update(overrides)
        return cls(**values)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): the one backoff
        formula (errand/backoff.py) with these delays, factor and jitter."""
        return self._retry.delay(attempt, rng)
