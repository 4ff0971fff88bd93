"""Questions and answers on SQLite (`input_required`): ask, answer, expire, run by the writer.

Each runs in the writer's transaction like `writes`; the rules are `store.input_rules`. The ask
is fenced like every write of a running attempt (`rules.held`): a stale attempt cannot ask.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from errand.models import AttemptOutcome, InputAsk, Request, Status, sources_of, to_document
from errand.store import input_rules, rules
from errand.store.rules import sql_in
from errand.store.sqlite import attempts, reads, scheduling
from errand.store.sqlite.rows import dumps, dumps_opt
from errand.store.sqlite.writes import add_delivery, add_event, end_request, update_one

_HELD = rules.held("?")


def ask(
    conn: sqlite3.Connection, request_id: str, attempt: int, question: InputAsk, state: Any, now: float
) -> Request:
    """processing -> input_required: lease released, attempt closed, question stored, the
    `input_required` event and (with a webhook URL) the outbox row, in this transaction."""
    input_rules.check_ask(question)
    req = update_one(
        conn,
        "UPDATE requests SET status = ?, lease_owner = NULL, lease_expires_at = NULL, input_request = ?, "
        "input_expires_at = ?, input_state = ?, seq = seq + 1, updated_at = ? "
        f"WHERE id = ? AND {_HELD} AND status IN {sql_in(sources_of(Status.INPUT_REQUIRED))}",
        (
            Status.INPUT_REQUIRED.value,
            dumps(question.to_dict()),
            question.expires_at,
            dumps_opt(state),
            now,
            request_id,
            attempt,
        ),
    )
    if req is None:
        raise rules.lease_lost(request_id, attempt)
    attempts.close(conn, req.id, attempt, AttemptOutcome.INPUT_REQUIRED, None, now)
    add_event(conn, req.id, req.seq, "input_required", input_rules.asked_data(question), now)
    if req.webhook_url:
        add_delivery(conn, req.id, req.webhook_url, to_document(req), now)
    return req


def answer(
    conn: sqlite3.Connection, request_id: str, input_id: str, value: Any, message_id: str | None, now: float
) -> tuple[Request, bool]:
    """input_required -> pending with the answer kept (see `input_rules.needs_answer`)."""
    req = reads.get(conn, request_id)
    if not input_rules.needs_answer(req, input_id, value):
        return req, False
    resumed = update_one(
        conn,
        "UPDATE requests SET status = ?, inputs = ?, input_request = NULL, input_expires_at = NULL, "
        "run_at = ?, seq = seq + 1, updated_at = ? "
        f"WHERE id = ? AND status IN {sql_in(sources_of(Status.PENDING))}",
        (
            Status.PENDING.value,
            dumps(input_rules.answers_with(req, input_id, value, message_id)),
            now,
            now,
            request_id,
        ),
    )
    assert resumed is not None  # read above under the one writer
    add_event(conn, req.id, resumed.seq, "input_received", input_rules.received_data(input_id), now)
    scheduling.add_key(conn, resumed.fairness_key)
    return resumed, True


def expire(conn: sqlite3.Connection, limit: int, now: float) -> list[Request]:
    """Up to `limit` waiting requests whose question expired, ended by its on_timeout."""
    rows = conn.execute(
        "SELECT id FROM requests WHERE status = 'input_required' AND input_expires_at IS NOT NULL "
        "AND input_expires_at <= ? ORDER BY input_expires_at LIMIT ?",
        (now, limit),
    ).fetchall()
    ended: list[Request] = []
    for (request_id,) in rows:
        req = reads.get(conn, request_id)
        assert req.input_request is not None  # status input_required always carries its question
        status, error = input_rules.expiry_end(req.input_request)
        done = update_one(
            conn,
            "UPDATE requests SET status = ?, error = ?, completed_at = ?, input_expires_at = NULL, "
            f"seq = seq + 1, updated_at = ? WHERE id = ? AND status IN {sql_in((Status.INPUT_REQUIRED,))}",
            (status.value, dumps(error.to_dict()), now, now, request_id),
        )
        if done is not None:
            ended.append(end_request(conn, done, now))
    return ended
