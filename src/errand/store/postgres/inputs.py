"""Questions and answers on PostgreSQL (`input_required`): the transaction bodies of ask,
answer and expire, and their statements. The rules are `store.input_rules`.

The ask is fenced like every write of a running attempt (`rules.held`); an answer locks the
request row first, so concurrent answers serialize and exactly one writes; expiry takes its
rows FOR UPDATE SKIP LOCKED and guards each update on the status, so two processes never end
one request twice.
"""

from __future__ import annotations

from typing import Any

from errand.models import InputAsk, Request, Status, to_document
from errand.store import input_rules, rules
from errand.store.postgres import ops, sql
from errand.store.postgres.outbox_ops import add_deliveries
from errand.store.postgres.pool import Conn, jsonb
from errand.store.rules import REQUEST_COLUMNS, held, qualified

_R = qualified(REQUEST_COLUMNS, "r")
_CHANGED = f"pg_notify('{sql.CH_CHANGE}', e.request_id || ' ' || e.seq)"
_WAITING = f"r.status = '{Status.INPUT_REQUIRED.value}'"

# $1 id, $2 attempt, $3 question, $4 its expiry, $5 kept state, $6 now, $7 event data
ASK = f"""
    WITH r AS (
        UPDATE requests r SET status = '{Status.INPUT_REQUIRED.value}', lease_owner = NULL,
            lease_expires_at = NULL, input_request = $3::jsonb, input_expires_at = $4::float8,
            input_state = $5::jsonb, seq = r.seq + 1, updated_at = $6
        WHERE r.id = $1 AND {held("$2", "r")} RETURNING {_R}),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, r.seq, 'input_required', $7::jsonb, $6 FROM r RETURNING request_id, seq),
    a AS (
        UPDATE attempts t SET ended_at = $6, outcome = 'input_required'
        FROM r WHERE t.request_id = r.id AND t.attempt = r.attempt AND t.outcome = 'running')
    SELECT r.*, {_CHANGED} FROM r JOIN e ON e.request_id = r.id"""
# $1 id, $2 answers, $3 now, $4 event data. The fairness key rejoins the current round.
ANSWER = f"""
    WITH r AS (
        UPDATE requests r SET status = '{Status.PENDING.value}', inputs = $2::jsonb, input_request = NULL,
            input_expires_at = NULL, run_at = $3, seq = r.seq + 1, updated_at = $3
        WHERE r.id = $1 AND {_WAITING} RETURNING {_R}),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, r.seq, 'input_received', $4::jsonb, $3 FROM r RETURNING request_id, seq),
    f AS (
        INSERT INTO fair_keys (key, next_turn)
        SELECT r.fairness_key, COALESCE((SELECT min(next_turn) FROM fair_keys), 0) FROM r
        ON CONFLICT (key) DO UPDATE SET next_turn = fair_keys.next_turn)
    SELECT r.*, pg_notify('{sql.CH_WORK}', ''), {_CHANGED} FROM r JOIN e ON e.request_id = r.id"""
# $1 now, $2 limit
EXPIRED = f"""
    SELECT {_R} FROM requests r
    WHERE {_WAITING} AND r.input_expires_at IS NOT NULL AND r.input_expires_at <= $1
    ORDER BY r.input_expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED"""
# $1 id, $2 terminal status, $3 error, $4 now
END = f"""
    UPDATE requests r SET status = $2, error = $3::jsonb, completed_at = $4, input_expires_at = NULL,
        seq = r.seq + 1, updated_at = $4
    WHERE r.id = $1 AND {_WAITING} RETURNING {_R}"""


async def ask(
    conn: Conn, request_id: str, attempt: int, question: InputAsk, state: Any, now: float
) -> Request:
    """processing -> input_required, the event, the outbox row with a webhook URL; LeaseLost if stale."""
    input_rules.check_ask(question)
    row = await conn.fetchrow(
        ASK,
        request_id,
        attempt,
        jsonb(question.to_dict()),
        question.expires_at,
        None if state is None else jsonb(state),
        now,
        jsonb(input_rules.asked_data(question)),
    )
    if row is None:
        raise rules.lease_lost(request_id, attempt)
    req = rules.to_request(row)
    if req.webhook_url:
        await add_deliveries(conn, [req], [to_document(req)], [now])
    return req


async def answer(
    conn: Conn, request_id: str, input_id: str, value: Any, message_id: str | None, now: float
) -> tuple[Request, bool]:
    """The answer kept and the request pending again, or (request, False) for a repeat."""
    req = ops.live(request_id, await conn.fetchrow(sql.LOCK_REQUEST, request_id))
    if not input_rules.needs_answer(req, input_id, value):
        return req, False
    answers = jsonb(input_rules.answers_with(req, input_id, value, message_id))
    row = await conn.fetchrow(ANSWER, request_id, answers, now, jsonb(input_rules.received_data(input_id)))
    assert row is not None  # locked above
    return rules.to_request(row), True


async def expire(conn: Conn, limit: int, now: float) -> list[Request]:
    """Up to `limit` waiting requests whose question expired, ended by its on_timeout."""
    ended: list[Request] = []
    for row in await conn.fetch(EXPIRED, now, limit):
        question = rules.to_request(row).input_request
        assert question is not None  # status input_required always carries its question
        status, error = input_rules.expiry_end(question)
        done = await conn.fetchrow(END, row["id"], status.value, jsonb(error.to_dict()), now)
        if done is not None:
            ended.append(rules.to_request(done))
    await ops.end_requests(conn, ended)
    return ended
