"""`errand worker`'s metrics port: GET /metrics and /health on `metrics.host:metrics.port`.

A worker process serves no API, yet its counters (attempts, retries, timeouts, webhook
deliveries) exist only in it: this small server is how Prometheus reads them. It is the same
endpoint as `errand serve`'s (api/scrape.py): the same access rule and the shared queue gauges.
Imported only by `errand worker` (cli/runtime.py), so client commands never load uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from errand.api.scrape import metrics_endpoint
from errand.config import Config
from errand.store.base import Store

__all__ = ["serve_metrics"]


class _WorkerSignals(uvicorn.Server):
    """uvicorn without its signal handlers: the worker's own stay in charge (uvicorn's would
    end this server, and not the worker, on SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_metrics(cfg: Config, store: Store, stop: asyncio.Event) -> None:
    """Serve until `stop` is set; RuntimeError if the port cannot be opened."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/metrics", metrics_endpoint(cfg, cfg.metrics.host, lambda: store), methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    server = _WorkerSignals(
        uvicorn.Config(
            app,
            host=cfg.metrics.host,
            port=cfg.metrics.port or 0,
            lifespan="off",
            access_log=False,
            log_level="warning",
            ws="none",
        )
    )
    serving = asyncio.create_task(server.serve(), name="errand-metrics-port")
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    server.should_exit = True
    await serving
    if not server.started:
        raise RuntimeError(f"the metrics port {cfg.metrics.host}:{cfg.metrics.port} could not be opened")
