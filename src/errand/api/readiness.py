"""GET /ready: whether this process can take work now, proven by a read and a real write.

The verdict needs a database read (it answers, migrations are current) and a commit of one
probe row (`Store.probe_write`: the lock can be had, the disk has room, the file is still the
one opened, the database is not read-only); a read alone said 200 over a deleted, full or
locked database. /ready needs no key, so concurrent calls share one probe in flight: a flood of
them costs the database one probe at a time, never a pool of connections.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from errand.api.context import ApiContext
from errand.api.errors import json_response
from errand.errors import ErrandError
from errand.store.base import Store


class Readiness:
    """The /ready endpoint of one app, with the probe its concurrent calls share."""

    def __init__(self) -> None:
        self._flight: asyncio.Future[str | None] | None = None

    async def ready(self, request: Request, ctx: ApiContext) -> Response:
        """200 {"status": "ready"}, or 503 with the reason and Retry-After (a server started
        with --no-migrate says "migrations pending" until `errand migrate` ran)."""
        if self._flight is None or self._flight.done():
            self._flight = asyncio.ensure_future(_reason(ctx.store))
        reason = await asyncio.shield(self._flight)
        if reason is not None:
            return json_response({"status": "unavailable", "reason": reason}, 503, {"Retry-After": "1"})
        return json_response({"status": "ready"})


async def _reason(store: Store) -> str | None:
    """Why the store cannot take work now; None when it can."""
    try:
        await store.ping()
        if not await store.schema_current():
            return "migrations pending: run `errand migrate`"
        await store.probe_write()
    except ErrandError as exc:
        return exc.message
    return None
