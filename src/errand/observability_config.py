"""The `metrics:` and `tracing:` sections of formation.yaml: GET /metrics and OpenTelemetry traces.

Its own module so config.py stays one screenful per concern; config.py composes them into Config
and remains the only reader of os.environ: `TracingConfig.resolved` is handed the environment
mapping by config.py and reads nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class MetricsConfig(BaseModel):
    """GET /metrics (api/scrape.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    require_key: bool | None = None
    """true: /metrics needs an admin or keys.metrics key (Authorization: Bearer, as Prometheus'
    `authorization` setting sends it). false: open. Default (unset): open only while the server
    listens on a loopback address, where only this host can reach it; on any other address a
    key is required."""
    cache_seconds: float = Field(default=2.0, ge=0, le=60)
    """The queue gauges are read from the database at most this often: many scrapers, one query."""
    timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    """A queue read slower than this answers the last values with errand_metrics_stale 1,
    rather than holding the scrape."""
    port: int | None = Field(default=None, ge=0, le=65535)
    """`errand worker` serves GET /metrics (and /health) on this port of workers' host; unset:
    a worker process exposes no metrics. (`errand serve` has /metrics on its own port.)"""
    host: str = "127.0.0.1"
    """The address `errand worker` serves metrics on, when `port` is set."""


class TracingConfig(BaseModel):
    """OpenTelemetry traces (`errand[otel]`); each unset key follows the standard OTEL_* variable.
    `enabled` unset: on when OTEL_TRACES_EXPORTER names an exporter other than `none`, or an
    OTLP endpoint is set; OTEL_SDK_DISABLED=true turns it off. The SDK reads the other OTEL_*
    variables itself (endpoint, headers, sampler, batch timings, resource attributes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool | None = None
    """true/false; unset: follows the OTEL_* variables (see above)."""
    service_name: str | None = None
    """Default: OTEL_SERVICE_NAME, else `errand`."""
    exporter: str | None = None
    """Default: OTEL_TRACES_EXPORTER, else `otlp` (OTLP over HTTP, to OTEL_EXPORTER_OTLP_ENDPOINT)."""

    def resolved(self, env: Mapping[str, str]) -> TracingConfig:
        exporter = self.exporter or env.get("OTEL_TRACES_EXPORTER", "").split(",")[0].strip() or "otlp"
        asked = bool(env.get("OTEL_TRACES_EXPORTER")) or any(
            env.get(f"OTEL_EXPORTER_OTLP{k}ENDPOINT") for k in ("_", "_TRACES_")
        )
        enabled = (asked and exporter != "none") if self.enabled is None else self.enabled
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            enabled = False
        name = self.service_name or env.get("OTEL_SERVICE_NAME") or "errand"
        return TracingConfig(enabled=enabled, service_name=name, exporter=exporter)
