"""Fair claims and session turns on PostgreSQL: the transactions (SQL in `fair_sql`; the plan is
`store.fairness`, run for claims by the database function of migration 0016). Whose turn it is
lives in the database (`fair_keys`), never in a process.
"""

from __future__ import annotations

from errand.models import IdempotencyKey, Limits, NewRequest, QueueInfo, Request, Status
from errand.store import fairness, rules
from errand.store.fairness import Running
from errand.store.postgres import fair_sql, ops, sql
from errand.store.postgres.pool import Conn, Database, Row


async def claim_rows(
    db: Database, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Row]:
    """Fair and capped (`claim`, one statement) or, with limits.fair off, oldest first in one
    statement (SKIP LOCKED)."""
    if limits.fair:
        return await db.run(lambda c: claim(c, worker_id, limit, lease_seconds, now, limits), tx=False)
    return await db.fetch(sql.CLAIM, now, limit, worker_id, now + lease_seconds)


async def claim(
    conn: Conn, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Row]:
    """Up to `limit` rows in fair order within the caps, leased to worker_id: one statement (its
    own transaction, one round trip) calling `errand_fair_claim`, the plan of `store.fairness`
    run inside the database and serialized with every other claimer (fair_sql.CLAIM_LOCK)."""
    caps = limits.agent_caps
    return await conn.fetch(
        fair_sql.CLAIM,
        worker_id,
        limit,
        now,
        now + lease_seconds,
        fairness.ROUNDS,
        limits.max_running,
        limits.max_running_per_user,
        list(caps),
        list(caps.values()),
        list(limits.weights),
        list(limits.weights.values()),
    )


async def submit(
    db: Database, batches: ops.Batches, new: NewRequest, idem: IdempotencyKey | None, now: float
) -> tuple[Row | None, Request | None, list[Request]]:
    """As submit_alone: (row, None, cancelled) or (None, the key's original, []). With a session
    or a queue cap, its own transaction (`submit_alone`); with a key, one statement; with
    neither, concurrent submits share one statement (group commit)."""
    if new.session_id is not None or new.max_queued is not None:
        return await db.run(lambda c: submit_alone(c, new, idem, now))
    if idem is None:
        return await batches.submit(ops.Submission(new, now)), None, []
    row, original = await db.run(lambda c: ops.submit_keyed(c, new, idem, now), tx=False)
    return row, original, []


async def submit_alone(
    conn: Conn, new: NewRequest, idem: IdempotencyKey | None, now: float
) -> tuple[Row | None, Request | None, list[Request]]:
    """A submit with a session_id or a queue cap, in its own transaction: (new row, None,
    cancelled) or, for an idempotent replay, (None, the original, []). One turn per session and
    the queue cap are exact (see Store.submit): submits of one session, and then of one user,
    serialize on advisory locks (always in that order, so they never deadlock), and each count
    is a statement after its lock, so it sees every submit committed before."""
    if new.session_id is not None:
        await conn.execute(fair_sql.LOCK_SESSION, f"{new.owner}\n{new.user_id}\n{new.session_id}")
    if new.max_queued is not None:
        await conn.execute(fair_sql.LOCK_QUEUE, f"{new.owner}\n{new.user_id}")
    if idem is not None:  # after the locks: a replay racing its original sees it committed
        found = await conn.fetchrow(sql.FIND_IDEMPOTENT, idem.scope, idem.key)
        if found is not None and found["key_created_at"] > rules.key_cutoff(now):
            row, original = await ops.submit_keyed(conn, new, idem, now)
            return row, original, []
    if new.max_queued is not None:
        queued = await conn.fetchval(fair_sql.QUEUED_COUNT, new.owner, new.user_id, new.max_queued)
        fairness.over_queue_cap(new, int(queued))
    held, cancelled = await _take_turn(conn, new, now) if new.session_id is not None else (None, [])
    if idem is not None:
        row, original = await ops.submit_keyed(conn, new, idem, now, held)
        return row, original, cancelled
    columns = ([value] for value in ops.request_columns(new, now, held))
    rows = await conn.fetch(sql.SUBMIT_MANY, *columns, [now], rules.CREATED, [ops.trace_param(new)])
    if not rows:
        raise rules.already_exists(new.id)
    return rows[0], None, cancelled


async def _take_turn(conn: Conn, new: NewRequest, now: float) -> tuple[str | None, list[Request]]:
    """(waiting_on of the new request, requests cancelled for it) after its on_busy policy."""
    session = (new.owner, new.user_id, new.session_id)
    active = await conn.fetchrow(fair_sql.SESSION_ACTIVE, *session)
    if active is None:  # maybe it ended while we waited for its lock: look again, at the new state
        active = await conn.fetchrow(fair_sql.SESSION_ACTIVE, *session)
    if active is None:
        return None, []
    if new.on_busy == "reject":
        raise fairness.session_busy(active["id"])
    if new.on_busy != "interrupt":
        return fairness.WAIT_SESSION, []
    cancelled = []
    for row in await conn.fetch(fair_sql.SESSION_UNFINISHED, *session):
        req, _, changed = await ops.request_cancel(conn, row["id"], now, fairness.SUPERSEDED_ERROR.to_dict())
        if changed:
            cancelled.append(req)
    return None, cancelled


async def queue_info(conn: Conn, req: Request, now: float, limits: Limits) -> QueueInfo:
    """Why a pending request waits and about where it stands (see fairness.queue_position)."""
    if req.status is not Status.PENDING:
        return QueueInfo(None, None)
    running = Running()
    if limits.capped:
        running = Running.of(
            (r["owner"], r["user_id"], r["agent"]) for r in await conn.fetch(fair_sql.RUNNING)
        )
    pos = await conn.fetchrow(fair_sql.POSITION, req.id, fairness.POSITION_CAP)
    position = None if pos is None else fairness.queue_position(pos["ahead"], pos["keys"], pos["before"])
    return QueueInfo(fairness.waiting_on(req, running, limits, now), position)
