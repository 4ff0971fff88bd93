"""GET /metrics: the Prometheus text of this process, with the queue gauges read from the database.

The queue gauges (`errand_queue_depth{status,agent}`, `errand_oldest_pending_seconds`) are the
shared truth: every process on one database answers the same values (`store.queue_stats`, one
scan of the partial index of non-terminal rows), so scrape any one of them and aggregate with
max(), not sum(). They are read at most every `metrics.cache_seconds` (many scrapers, one
query; concurrent scrapes share the read in flight), and a read slower than
`metrics.timeout_seconds` or failing answers the last values with `errand_metrics_stale 1`:
a slow database never hangs a scrape. Everything else in the output is per process
(`errand.metrics`).

Access (`metrics.require_key`): unset, /metrics is open while the server listens on a loopback
address (only this host can reach it; the output holds counts by agent id and kind, never ids,
content or keys) and needs a key on any other address; an admin key or a `keys.metrics` key,
sent as `Authorization: Bearer` (Prometheus' `authorization` setting) or in the usual headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from errand.api.auth import Authenticator
from errand.api.errors import to_response
from errand.config import Config
from errand.metrics import UNROUTED
from errand.models import QueueStats
from errand.store.base import Store

__all__ = ["QueueGauges", "ScrapeAccess", "is_loopback", "metrics_endpoint"]

log = logging.getLogger("errand.api")

QUEUE_STATUSES = ("pending", "processing", "input_required")
"""Always shown for every configured agent (0 when empty), so a series never vanishes."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; 0.0.0.0, :: and any other address are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ScrapeAccess:
    """Who may read /metrics: anyone, or the holders of an admin or metrics key."""

    def __init__(self, config: Config, host: str) -> None:
        required = config.metrics.require_key
        self.required = not is_loopback(host) if required is None else required
        self._auth = Authenticator(config.keys.metrics, config.keys.admin)

    def check(self, request: Request) -> None:
        """Unauthorized (401) unless the key is not required or an accepted one is sent."""
        if self.required:
            self._auth.authenticate(request.headers)


class QueueGauges(Collector):
    """The last queue read as gauges, refreshed by `refresh` (cached, bounded in time)."""

    def __init__(self, agents: Iterable[str], cache_seconds: float, timeout: float) -> None:
        self._agents = tuple(agents)
        self._cache = cache_seconds
        self._timeout = timeout
        self._stats: QueueStats | None = None
        self._read_at = -float("inf")  # time.monotonic() of the last good read
        self._stale = False
        self._reading: asyncio.Task[QueueStats] | None = None

    async def refresh(self, store: Store) -> None:
        """Read the queue unless the last read is fresh; on a slow or failed read keep the
        last values and mark them stale. The read goes on in the background after a timeout
        and serves the next scrape (never two reads at once)."""
        if time.monotonic() - self._read_at < self._cache and not self._stale:
            return
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(store.queue_stats(), name="errand-queue-stats")
        try:
            stats = await asyncio.wait_for(asyncio.shield(self._reading), self._timeout)
        except TimeoutError:
            self._mark_stale("the queue read took over %.1fs", self._timeout)
            return
        except Exception as exc:  # StoreUnavailable, mostly: the scrape still answers
            self._mark_stale("the queue read failed: %s", exc)
            return
        self._stats, self._read_at, self._stale = stats, time.monotonic(), False

    def _mark_stale(self, why: str, arg: object) -> None:
        if not self._stale:
            log.warning("/metrics: " + why + "; serving the last queue values as stale", arg)
        self._stale = True

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "errand_queue_depth",
            "Requests not yet terminal, by status and agent, in the shared database",
            labels=["status", "agent"],
        )
        stats = self._stats
        counts: dict[tuple[str, str], int] = {(s, a): 0 for s in QUEUE_STATUSES for a in self._agents}
        for (status, agent), n in (stats.depth if stats else {}).items():
            key = (status, agent or UNROUTED)
            counts[key] = counts.get(key, 0) + n
        for (status, agent), n in sorted(counts.items()):
            depth.add_metric([status, agent], n)
        yield depth
        oldest = stats.oldest_pending_at if stats else None
        yield GaugeMetricFamily(
            "errand_oldest_pending_seconds",
            "Age of the oldest pending request in the shared database (0 when none is pending)",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest),
        )
        yield GaugeMetricFamily(
            "errand_metrics_stale",
            "1 when the queue gauges are the last values read, as the database did not answer "
            "within metrics.timeout_seconds; 0 when they are fresh",
            value=1.0 if self._stale or stats is None else 0.0,
        )


_current: QueueGauges | None = None
"""The registered collector (one per process): the newest scrape endpoint's gauges."""


def _register(gauges: QueueGauges) -> None:
    global _current
    if _current is not None:
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(_current)
    REGISTRY.register(gauges)
    _current = gauges


def metrics_endpoint(
    config: Config, host: str, store: Callable[[], Store]
) -> Callable[[Request], Awaitable[Response]]:
    """The GET /metrics endpoint of an app listening on `host` (or of `errand worker`'s
    metrics port); `store()` gives the store once the lifespan has opened it."""
    access = ScrapeAccess(config, host)
    agents = [agent.id for agent in config.agents]
    gauges = QueueGauges(agents, config.metrics.cache_seconds, config.metrics.timeout_seconds)
    _register(gauges)

    async def metrics(request: Request) -> Response:
        try:
            access.check(request)
            await gauges.refresh(store())
        except Exception as exc:
            return to_response(exc)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics
