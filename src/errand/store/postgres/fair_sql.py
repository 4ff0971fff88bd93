"""The SQL of fair claiming and session turns on PostgreSQL, and the small steps that run it.

A claim is one statement: `errand_fair_claim` (migration 0016_fair_claim_function.sql, the
executable form of the plan in `store.fairness`). Claims serialize on one transaction-scoped
advisory lock (CLAIM_LOCK, taken inside the function): the plan reads turns and running counts
and then writes them, and two claimers interleaving would each see room under a cap and
together pass it. Every claimer still reads request rows with SKIP LOCKED (a row being
cancelled is passed over, never waited on). Locks on `fair_keys` rows are taken in key order by
claims and by submits alike (see sql._ADD_KEYS), so the two never deadlock.
"""

from __future__ import annotations

from typing import Any

from errand.models import IdempotencyKey, NewRequest, Request, Status
from errand.store import fairness
from errand.store.postgres.pool import Conn
from errand.store.rules import REQUEST_COLUMNS, qualified

CLAIM_LOCK = 0x6661_6972  # "fair"
_R = qualified(REQUEST_COLUMNS, "r")
_UNFINISHED = f"status IN ('{Status.PENDING.value}', '{Status.PROCESSING.value}')"

# $1 worker, $2 limit, $3 now, $4 lease expiry, $5 plans (fairness.ROUNDS), $6 max_running,
# $7 max_running_per_user, $8/$9 agent caps (names, caps), $10/$11 weights (keys, weights): the
# claimed rows in fair order, each with its `started` event, attempt row and NOTIFY
CLAIM = f"""
    SELECT {REQUEST_COLUMNS} FROM errand_fair_claim($1, $2, $3, $4, $5, $6, $7,
        $8::text[], $9::int[], $10::text[], $11::float8[]) WITH ORDINALITY
    ORDER BY ordinality"""
RUNNING = "SELECT owner, user_id, agent FROM requests WHERE lease_owner IS NOT NULL"

# -- sessions ----------------------------------------------------------------------------------------
_SESSION = "owner = $1 AND user_id = $2 AND session_id = $3"
# Submits of one session serialize on this lock ($1: the session's scope text).
LOCK_SESSION = "SELECT pg_advisory_xact_lock(hashtext($1))"
# The request holding the session's turn, locked: a finish of it waits for this submit, and so
# sees the request this submit enqueues behind it.
SESSION_ACTIVE = f"""
    SELECT id FROM requests WHERE {_SESSION} AND waiting_on IS NULL AND {fairness.SESSION_UNFINISHED}
    FOR UPDATE"""
SESSION_UNFINISHED = f"""
    SELECT id FROM requests WHERE {_SESSION} AND {fairness.SESSION_UNFINISHED}
    ORDER BY waiting_on IS NULL, created_at, pos"""
# $1 owners, $2 users, $3 sessions whose turn-holding request ended: each one's next held one runs
RELEASE_SESSIONS = f"""
    WITH n AS (
        SELECT DISTINCT ON (r.owner, r.user_id, r.session_id) r.id
        FROM unnest($1::text[], $2::text[], $3::text[]) AS s(owner, user_id, session_id)
        JOIN requests r ON r.owner = s.owner AND r.user_id = s.user_id AND r.session_id = s.session_id
        WHERE r.waiting_on IS NOT NULL AND r.{_UNFINISHED}
        ORDER BY r.owner, r.user_id, r.session_id, r.created_at, r.pos)
    UPDATE requests r SET waiting_on = NULL FROM n WHERE r.id = n.id
    RETURNING r.id, pg_notify('errand_work', '')"""

# -- the queue cap -----------------------------------------------------------------------------------
QUEUE_LOCK = 0x7175_6575  # "queu": the lock class of per-user queue caps (two-key advisory locks)
# Capped submits of one user serialize on this lock ($1: owner and user id), held to commit.
LOCK_QUEUE = f"SELECT pg_advisory_xact_lock({QUEUE_LOCK}, hashtext($1))"

# -- what the status document shows ------------------------------------------------------------------
QUEUED_COUNT = """
    SELECT count(*) FROM (SELECT 1 FROM requests WHERE owner = $1 AND user_id = $2
        AND status = 'pending' LIMIT $3) q"""
# $1 request id, $2 cap: earlier claimable rows of its key, keys with work, keys ahead this round
POSITION = f"""
    SELECT
        (SELECT count(*) FROM (SELECT 1 FROM requests a WHERE a.fairness_key = r.fairness_key
            AND a.{_UNFINISHED} AND a.lease_owner IS NULL AND a.sort_key < r.sort_key LIMIT $2) x) AS ahead,
        (SELECT count(*) FROM fair_keys) AS keys,
        (SELECT count(*) FROM fair_keys k WHERE k.next_turn <
            (SELECT next_turn FROM fair_keys WHERE key = r.fairness_key)) AS before
    FROM requests r WHERE r.id = $1"""


def fair_columns(new: NewRequest, now: float, waiting_on: str | None) -> tuple[Any, ...]:
    """priority, fairness_key, waiting_on, sort_key of a new request (after sql._REQUEST_FIELDS'
    first thirteen)."""
    return new.priority, new.turn_key, waiting_on, fairness.sort_key(new.priority, new.aging_seconds, now)


def idem_args(idem: IdempotencyKey) -> tuple[str, str, str]:
    """scope, key, fingerprint: the last parameters of sql.SUBMIT_IDEMPOTENT."""
    return idem.scope, idem.key, idem.fingerprint


async def release_sessions(conn: Conn, ended: list[Request]) -> None:
    """Requests that held their session's turn ended: each session's next held one may run."""
    held = [r for r in ended if r.session_id is not None and r.waiting_on is None]
    if held:
        await conn.execute(
            RELEASE_SESSIONS, [r.owner for r in held], [r.user_id for r in held], [r.session_id for r in held]
        )
