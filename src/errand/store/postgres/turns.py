"""Fair claims and session turns on PostgreSQL: the transactions (SQL in `fair_sql`, plan in
`store.fairness`). Whose turn it is lives in the database (`fair_keys`), never in a process.
"""

from __future__ import annotations

from errand.models import IdempotencyKey, Limits, NewRequest, QueueInfo, Request, Status
from errand.store import fairness, rules
from errand.store.fairness import Candidate, Running
from errand.store.postgres import fair_sql, ops, sql
from errand.store.postgres.pool import Conn, Database, Row


async def claim_rows(
    db: Database, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Row]:
    """Fair and capped (`claim`, one transaction) or, with limits.fair off, oldest first in one
    statement (SKIP LOCKED)."""
    if limits.fair:
        return await db.run(lambda c: claim(c, worker_id, limit, lease_seconds, now, limits))
    return await db.fetch(sql.CLAIM, now, limit, worker_id, now + lease_seconds)


async def claim(
    conn: Conn, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Row]:
    """Up to `limit` rows in fair order within the caps, leased to worker_id, in one
    transaction serialized with every other claimer of the database (fair_sql.CLAIM_LOCK)."""
    await conn.execute(fair_sql.LOCK_CLAIMS)
    rows: list[Row] = []
    for _ in range(fairness.ROUNDS):
        more, another = await _round(conn, worker_id, limit - len(rows), lease_seconds, now, limits)
        rows += more
        if len(rows) >= limit or not another:
            break
    return rows


async def _round(
    conn: Conn, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> tuple[list[Row], bool]:
    """One plan of a claim: (rows claimed, whether another plan may find more)."""
    keys = [(row["key"], row["next_turn"]) for row in await conn.fetch(fair_sql.KEYS, limit)]
    quota = fairness.quotas(keys, limit, limits)
    if not quota:
        return [], False
    heads: dict[str, list[Candidate]] = {key: [] for key in quota}
    for h in await conn.fetch(fair_sql.HEADS, list(quota), list(quota.values()), now):
        heads[h["key"]].append(Candidate(h["id"], h["key"], h["owner"], h["user_id"], h["agent"]))
    running = Running()
    if limits.capped:
        running = Running.of(
            (r["owner"], r["user_id"], r["agent"]) for r in await conn.fetch(fair_sql.RUNNING)
        )
    plan = fairness.plan([kt for kt in keys if kt[0] in quota], heads, running, limits, limit)
    await conn.execute(fair_sql.LOCK_KEYS, sorted(plan.turns))
    if plan.empty:
        for row in await conn.fetch(fair_sql.DROP_EMPTY_KEYS, plan.empty):
            del plan.turns[row["key"]]
    await conn.execute(fair_sql.SET_TURNS, list(plan.turns), list(plan.turns.values()))
    if not plan.chosen:
        return [], plan.another
    order = {c.id: n for n, c in enumerate(plan.chosen)}
    rows = await conn.fetch(fair_sql.CLAIM_IDS, list(order), now, worker_id, now + lease_seconds)
    return sorted(rows, key=lambda row: order[row["id"]]), plan.another


async def submit(
    db: Database, batches: ops.Batches, new: NewRequest, idem: IdempotencyKey | None, now: float
) -> tuple[Row | None, Request | None, list[Request]]:
    """As submit_session: (row, None, cancelled) or (None, the key's original, []). With a
    session, one turn per session in its own transaction; with a key, one statement; with
    neither, concurrent submits share one statement (group commit)."""
    if new.session_id is not None:
        return await db.run(lambda c: submit_session(c, new, idem, now))
    if idem is None:
        return await batches.submit(ops.Submission(new, now)), None, []
    row, original = await db.run(lambda c: ops.submit_keyed(c, new, idem, now), tx=False)
    return row, original, []


async def submit_session(
    conn: Conn, new: NewRequest, idem: IdempotencyKey | None, now: float
) -> tuple[Row | None, Request | None, list[Request]]:
    """A submit with a session_id, in one transaction: (new row, None, cancelled) or, for an
    idempotent replay, (None, the original, []). One turn per session (see Store.submit)."""
    await conn.execute(fair_sql.LOCK_SESSION, f"{new.owner}\n{new.user_id}\n{new.session_id}")
    if idem is not None:
        found = await conn.fetchrow(sql.FIND_IDEMPOTENT, idem.scope, idem.key)
        if found is not None and found["key_created_at"] > rules.key_cutoff(now):
            row, original = await ops.submit_keyed(conn, new, idem, now)
            return row, original, []
    held, cancelled = await _take_turn(conn, new, now)
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
