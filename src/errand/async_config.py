"""The `async:` section of formation.yaml: sync vs async, webhooks, result lifetime.

Its own module so config.py stays one screenful per concern; config.py composes it into Config
(and remains the only reader of os.environ).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from errand.durations import Duration, parse_duration
from errand.webhooks import sign


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AsyncConfig(_Section):
    mode: Literal["auto", "sync", "async"] = "auto"
    """auto: sync or async from the estimate (threshold_seconds); sync: wait for the result (202 after
    sync_wait_seconds); async: always 202. A request's own mode wins."""
    threshold_seconds: float = Field(default=30.0, ge=0)
    """In auto mode, requests estimated to take this long or more go async."""
    sync_wait_seconds: float | None = Field(default=None, ge=0)
    """How long a sync call waits for the result before answering 202 and going on (unset:
    threshold_seconds)."""
    webhook_url: str | None = None
    """The webhook every async request is delivered to when the request names none."""
    webhook_secret: str | None = None
    """What webhooks are signed with. Unset: a `whsec_` secret generated once per database and
    shared by every process on it (`errand webhook-secret` prints it); never the admin key. MUXI
    receivers that verify with the admin key keep working with `webhook_secret: "${ERRAND_ADMIN_KEY}"`."""
    webhook_retries: int = Field(default=3, ge=0, le=50)
    """Delivery retries after the first POST fails (non-2xx, timeout, connection error)."""
    webhook_timeout: Duration = 10.0
    """Seconds one webhook POST may take."""
    webhook_allow_hosts: list[str] = Field(default_factory=list)
    """Hosts (or host:port, IPv6 bracketed) webhooks may reach although they are loopback, private,
    link-local or otherwise non-public; everything else must resolve to public addresses only (SSRF guard,
    delivery/urlguard.py)."""
    webhook_initial_delay: Duration = 1.0
    webhook_max_delay: Duration = 3600.0
    """A failed delivery is retried after min(max_delay, initial_delay * 2**(n-1)) s, +-25% jitter."""
    webhook_concurrency: int = Field(default=32, ge=1, le=1000)
    """Webhook POSTs in flight at once per dispatcher (each `errand serve` / `errand worker`)."""
    result_ttl: Duration = 86400.0
    """A finished request answers 410 REQUEST_EXPIRED (and leaves lists) this long after it
    ended, at once on every read; the purge then drops its result, events and deliveries."""
    tombstone_ttl: Duration = 30 * 86400.0
    """How long an expired request's id still answers 410 REQUEST_EXPIRED (not 404) after its result was
    purged."""
    purge_interval: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 300.0
    """How often each worker purges expired results (and drops old tombstones and keys)."""

    @field_validator("webhook_secret")
    @classmethod
    def _signable(cls, secret: str | None) -> str | None:
        """Empty means unset (`${ERRAND_WEBHOOK_SECRET:-}`); a malformed whsec_ secret fails at
        load, naming the key, rather than at the first delivery (webhooks.sign's rule)."""
        if not secret:
            return None
        try:
            sign(b"", secret, msg_id="check", timestamp=0)
        except ValueError:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
        return secret

    max_result_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """An agent result larger than this as JSON fails its request (ResultNotStorable): it would
    be stored three times (row, terminal event, webhook body) and sent whole to every reader."""

    @property
    def sync_wait(self) -> float:
        """How long a sync call waits before answering 202 (default: the threshold)."""
        return self.sync_wait_seconds if self.sync_wait_seconds is not None else self.threshold_seconds
