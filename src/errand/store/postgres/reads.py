"""The read side of the PostgreSQL backend: one query each, on a reader connection of the pool."""

from __future__ import annotations

from errand.console_models import Match
from errand.models import AttemptRecord, Delivery, Event, Page, QueueStats, Request, Status
from errand.store import attempt_log, listing, rules
from errand.store.postgres import fair_sql, outbox_ops, sql
from errand.store.postgres.pool import Database
from errand.store.queue import FOLD_AT, PG_FOLD, QUEUE_SQL, to_queue_stats


async def get(db: Database, request_id: str, cutoff: float | None) -> Request:
    row = await db.fetchrow(sql.GET, request_id, read=True)
    return rules.live(request_id, None if row is None else rules.to_request(row), cutoff)


async def list_page(
    db: Database,
    owner: str | None,
    user_id: str | None,
    status: Status | None,
    limit: int,
    cursor: str | None,
    cutoff: float | None,
    match: Match | None = None,
) -> Page:
    """One page of `list` (store/listing.py builds the query)."""
    query = listing.list_query(
        owner, user_id, status, limit, cursor, mark=sql.mark, alias="r", cutoff=cutoff, match=match
    )
    text = sql.LIST.format(where=query.where, order=query.order, limit=query.fetch)
    rows = await db.fetch(text, *query.params, read=True)
    return query.page([rules.to_request(row) for row in rows])


async def events_since(db: Database, request_id: str, after_seq: int, limit: int) -> list[Event]:
    rows = await db.fetch(sql.EVENTS_SINCE, request_id, after_seq, max(0, limit), read=True)
    return [rules.to_event(row) for row in rows]


async def seq_of(db: Database, request_id: str) -> int:
    """The request's last event seq; NotFound for an unknown request."""
    row = await db.fetchrow(sql.SEQ_OF, request_id, read=True)
    if row is None:
        raise rules.not_found(request_id)
    return int(row["seq"])


async def list_attempts(db: Database, request_id: str) -> list[AttemptRecord]:
    rows = await db.fetch(sql.LIST_ATTEMPTS, request_id, read=True)
    return [attempt_log.to_record(row) for row in rows]


async def duration_history(db: Database, agent: str, limit: int) -> list[float]:
    rows = await db.fetch(sql.DURATIONS, agent, max(0, limit), read=True)
    return [float(row["seconds"]) for row in rows]


async def queue_stats(db: Database) -> QueueStats:
    """The counters summed; folded into one row per key once they have grown (store/queue.py)."""
    stats, changes = to_queue_stats(await db.fetch(QUEUE_SQL, read=True))
    if changes > FOLD_AT:
        await db.run(lambda c: c.execute(PG_FOLD), tx=False)
    return stats


async def queued_count(db: Database, owner: str, user_id: str, cap: int) -> int:
    row = await db.fetchrow(fair_sql.QUEUED_COUNT, owner, user_id, cap, read=True)
    return int(row[0]) if row is not None else 0


async def cancelled_among(db: Database, request_ids: list[str]) -> set[str]:
    if not request_ids:
        return set()
    ids = list(dict.fromkeys(request_ids))
    rows = await db.fetch(sql.TERMINAL_AMONG, ids, sql.TERMINAL_VALUES, read=True)
    return {row["id"] for row in rows}


async def deliveries(db: Database, request_id: str) -> list[Delivery]:
    return await db.run(lambda c: outbox_ops.deliveries(c, sql.DELIVERIES_OF, request_id), read=True)
