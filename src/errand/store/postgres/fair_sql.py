"""The SQL of fair claiming and session turns on PostgreSQL, and the small steps that run it.

Claims serialize on one transaction-scoped advisory lock (CLAIM_LOCK): the fair plan reads turns
and running counts and then writes them, and two claimers interleaving would each see room under
a cap and together pass it. Every claimer still reads request rows with SKIP LOCKED (a row being
cancelled is passed over, never waited on). Locks on `fair_keys` rows are taken in key order by
claims and by submits alike (see sql._ADD_KEYS), so the two never deadlock.
"""

from __future__ import annotations

from typing import Any

from errand.models import IdempotencyKey, NewRequest, Request, Status
from errand.store import fairness
from errand.store.postgres.pool import Conn
from errand.store.rules import REQUEST_COLUMNS, claimable, qualified

CLAIM_LOCK = 0x6661_6972  # "fair"
_R = qualified(REQUEST_COLUMNS, "r")
_UNFINISHED = f"status IN ('{Status.PENDING.value}', '{Status.PROCESSING.value}')"

LOCK_CLAIMS = f"SELECT pg_advisory_xact_lock({CLAIM_LOCK})"
# $1 how many keys
KEYS = "SELECT key, next_turn FROM fair_keys ORDER BY next_turn, key LIMIT $1"
# $1 keys, $2 how many heads of each, $3 now: the heads of each key's queue (index requests_fair)
HEADS = f"""
    SELECT q.key, h.id, h.owner, h.user_id, h.agent
    FROM unnest($1::text[], $2::int[]) AS q(key, n)
    CROSS JOIN LATERAL (
        SELECT id, owner, user_id, agent FROM requests
        WHERE {fairness.fair_head("q.key", "$3")}
        ORDER BY sort_key, pos LIMIT q.n
        FOR UPDATE SKIP LOCKED) h"""
RUNNING = "SELECT owner, user_id, agent FROM requests WHERE lease_owner IS NOT NULL"
# $1 keys: locked in key order before their turns change or they are dropped
LOCK_KEYS = "SELECT key FROM fair_keys WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE"
# $1 keys found with nothing claimable: dropped when nothing of theirs is unfinished
DROP_EMPTY_KEYS = f"""
    DELETE FROM fair_keys f WHERE f.key = ANY($1::text[])
        AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.fairness_key = f.key AND r.{_UNFINISHED})
    RETURNING f.key"""
# $1 keys, $2 turns
SET_TURNS = """
    UPDATE fair_keys f SET next_turn = x.turn
    FROM unnest($1::text[], $2::float8[]) AS x(key, turn) WHERE f.key = x.key"""
# $1 ids, $2 now, $3 worker, $4 lease expiry: the planned rows, still claimable, each with its
# `started` event and its open attempt row
CLAIM_IDS = f"""
    WITH r AS (
        UPDATE requests r SET status = 'processing', attempt = r.attempt + 1, lease_owner = $3,
            lease_expires_at = $4, started_at = COALESCE(r.started_at, $2), seq = r.seq + 1, updated_at = $2
        WHERE r.id = ANY($1::text[]) AND {claimable("$2")}
        RETURNING {_R}),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, r.seq, 'started',
            jsonb_build_object('status', r.status, 'attempt', r.attempt), $2
        FROM r RETURNING request_id, seq),
    a AS (
        INSERT INTO attempts (request_id, attempt, worker_id, started_at)
        SELECT r.id, r.attempt, $3, $2 FROM r)
    SELECT r.*, pg_notify('errand_change', e.request_id || ' ' || e.seq)
    FROM r JOIN e ON e.request_id = r.id"""

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
