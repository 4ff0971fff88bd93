"""The webhook outbox's transaction bodies of the PostgreSQL backend (see `ops`): new
deliveries, one recorded attempt, and deliveries read with their attempts."""

from __future__ import annotations

from typing import Any

from errand.clock import new_id
from errand.models import Delivery, Request
from errand.store import rules
from errand.store.postgres import sql
from errand.store.postgres.pool import Conn


async def add_deliveries(
    conn: Conn, requests: list[Request], bodies: list[dict[str, Any]], times: list[float]
) -> list[Delivery]:
    """New deliveries, each due at its time (now)."""
    ids = [new_id("dlv") for _ in requests]
    urls = [r.webhook_url or "" for r in requests]
    await conn.execute(sql.INSERT_DELIVERIES, ids, [r.id for r in requests], urls, bodies, times)
    return [
        Delivery(id=i, request_id=r.id, url=u, state="pending", attempts=[], next_attempt_at=t, created_at=t)
        for i, r, u, t in zip(ids, requests, urls, times, strict=True)
    ]


async def record_attempt(
    conn: Conn,
    delivery_id: str,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    next_attempt_at: float | None,
    now: float,
) -> Delivery:
    row = await conn.fetchrow(sql.LOCK_DELIVERY, delivery_id)
    if row is None:
        raise rules.delivery_not_found(delivery_id)
    state, next_at = rules.next_delivery_state(row["state"], status_code, next_attempt_at)
    number = row["attempts"] + 1
    await conn.execute(
        sql.RECORD_ATTEMPT, delivery_id, number, now, status_code, error, duration_ms, state, next_at
    )
    return (await deliveries(conn, sql.DELIVERY, delivery_id))[0]


async def deliveries(conn: Conn, query: str, key: str) -> list[Delivery]:
    """Deliveries selected by `query` ($1 = key), each with its attempts in order."""
    rows = await conn.fetch(query, key)
    if not rows:
        return []
    attempts = await conn.fetch(sql.ATTEMPTS_OF, [row["id"] for row in rows])
    by_delivery: dict[str, list[Any]] = {}
    for a in attempts:
        by_delivery.setdefault(a["delivery_id"], []).append(rules.to_attempt(a))
    return [rules.to_delivery(row, by_delivery.get(row["id"], [])) for row in rows]
