"""The writes of the SQLite backend: one plain function per write operation, run by the writer.

Each runs inside the writer's transaction (and its own savepoint), so raising after a partial
write undoes it. Status changes are guarded by `UPDATE ... WHERE status IN (sources_of(new))
AND attempt = ?`, rendering the transition table of `models`: a guarded update that touches no
row means the caller lost the request (LeaseLost) or broke the table (Conflict).

Event data written here: created {"status"}; started {"status", "attempt"}; retry {"status",
"attempt", "run_at", "error"}; completed/failed/cancelled: the status document (to_document);
progress/content: what the worker passed to append_event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from errand.clock import new_id
from errand.models import (
    AttemptOutcome,
    Delivery,
    ErrorInfo,
    Event,
    IdempotencyKey,
    Limits,
    NewRequest,
    OutboxItem,
    Progress,
    Request,
    Result,
    Status,
    sources_of,
    to_document,
)
from errand.store import attempt_log, fairness, rules
from errand.store.processes import WorkerProcess
from errand.store.rules import REQUEST_COLUMNS, sql_in
from errand.store.sqlite import attempts, reads, scheduling
from errand.store.sqlite.rows import INSERT_REQUEST, dumps, dumps_opt, loads, new_request, request_params

_HELD = rules.held("?")


# -- what several writes do ---------------------------------------------------------------------
def add_event(conn: sqlite3.Connection, request_id: str, seq: int, type: str, data: Any, at: float) -> Event:
    conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (request_id, seq, type, dumps(data), at))
    return Event(request_id=request_id, seq=seq, type=type, data=data, at=at)


def update_one(conn: sqlite3.Connection, sql: str, params: Iterable[Any]) -> Request | None:
    """Run an `UPDATE requests ... RETURNING {REQUEST_COLUMNS}` that touches at most one row."""
    row = conn.execute(f"{sql} RETURNING {REQUEST_COLUMNS}", tuple(params)).fetchone()
    return None if row is None else rules.to_request(row, loads)


def end_request(conn: sqlite3.Connection, req: Request, now: float) -> Request:
    """What every terminal write adds in the same transaction: the terminal event carrying the
    status document, and the webhook outbox row when the request has a webhook URL."""
    doc = to_document(req)
    scheduling.release_session(conn, req, now)
    add_event(conn, req.id, req.seq, req.status.value, attempt_log.terminal_event_data(req, doc), now)
    if req.webhook_url:
        add_delivery(conn, req.id, req.webhook_url, doc, now)
    return req


def add_delivery(conn: sqlite3.Connection, request_id: str, url: str, body: Any, now: float) -> Delivery:
    delivery_id = new_id("dlv")
    conn.execute(
        "INSERT INTO deliveries (id, request_id, url, body, state, attempts, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
        (delivery_id, request_id, url, dumps(body), now, now),
    )
    return Delivery(delivery_id, request_id, url, "pending", [], now, now)


# -- write side ------------------------------------------------------------------------------------
def submit(
    conn: sqlite3.Connection, new: NewRequest, idem: IdempotencyKey | None, now: float
) -> tuple[Request, bool]:
    """Request row, idempotency key and `created` event, or the original request of the key."""
    if idem is not None:
        original = _find_idempotent(conn, idem, now)
        if original is not None:
            return original, False
    if new.max_queued is not None:  # in the write transaction: the one writer serializes submits
        fairness.over_queue_cap(new, scheduling.queued_count(conn, new.owner, new.user_id, new.max_queued))
    held = scheduling.take_turn(conn, new, lambda rid: _cancel(conn, rid, now, fairness.SUPERSEDED_ERROR))
    req = new_request(new, now, held)
    try:
        conn.execute(
            INSERT_REQUEST, request_params(req, now, fairness.sort_key(new.priority, new.aging_seconds, now))
        )
    except sqlite3.IntegrityError as exc:
        raise rules.already_exists(new.id) from exc
    if idem is not None:
        conn.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
            (idem.scope, idem.key, idem.fingerprint, new.id, now),
        )
    add_event(conn, req.id, 1, "created", rules.CREATED, now)
    scheduling.add_key(conn, req.fairness_key)
    return req, True


def _find_idempotent(conn: sqlite3.Connection, idem: IdempotencyKey, now: float) -> Request | None:
    row = conn.execute(
        "SELECT fingerprint, request_id, created_at FROM idempotency WHERE scope = ? AND key = ?",
        (idem.scope, idem.key),
    ).fetchone()
    if row is None:
        return None
    if row[2] <= rules.key_cutoff(now):  # outlived its TTL, not purged yet: the key is free again
        conn.execute("DELETE FROM idempotency WHERE scope = ? AND key = ?", (idem.scope, idem.key))
        return None
    rules.check_fingerprint(idem, row[0], row[1])
    return reads.get(conn, row[1])


# -- work ------------------------------------------------------------------------------------------
def claim(
    conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float, now: float, limits: Limits
) -> list[Request]:
    """Take up to `limit` runnable rows (see `scheduling.claim`), each with its `started` event
    and its open attempt row."""
    claimed = scheduling.claim(conn, worker_id, limit, lease_seconds, now, limits)
    attempts.open_attempts(conn, claimed, worker_id, now)
    return claimed


def heartbeat(
    conn: sqlite3.Connection, worker_id: str, attempts: dict[str, int], lease_seconds: float, now: float
) -> set[str]:
    lost: set[str] = set()
    for request_id, attempt in attempts.items():
        cur = conn.execute(
            f"UPDATE requests SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND {_HELD}",
            (now + lease_seconds, request_id, worker_id, attempt),
        )
        if cur.rowcount == 0:
            lost.add(request_id)
    return lost


def append_event(
    conn: sqlite3.Connection,
    request_id: str,
    attempt: int,
    type: str,
    data: dict[str, Any],
    progress: Progress | None,
    now: float,
) -> Event:
    row = conn.execute(
        f"UPDATE requests SET seq = seq + 1, progress = COALESCE(?, progress), updated_at = ? "
        f"WHERE id = ? AND {_HELD} RETURNING seq",
        (dumps_opt(progress.to_dict() if progress else None), now, request_id, attempt),
    ).fetchone()
    if row is None:
        raise rules.lease_lost(request_id, attempt)
    return add_event(conn, request_id, row[0], type, data, now)


def retry_later(
    conn: sqlite3.Connection, request_id: str, attempt: int, run_at: float, error: ErrorInfo, now: float
) -> Request:
    req = update_one(
        conn,
        "UPDATE requests SET failures = failures + 1, lease_owner = NULL, lease_expires_at = NULL, "
        f"run_at = ?, error = ?, seq = seq + 1, updated_at = ? WHERE id = ? AND {_HELD} "
        f"AND status IN {sql_in(sources_of(Status.PROCESSING))}",
        (run_at, dumps(error.to_dict()), now, request_id, attempt),
    )
    if req is None:
        raise rules.lease_lost(request_id, attempt)
    add_event(conn, req.id, req.seq, "retry", rules.retry_data(attempt, run_at, error), now)
    attempts.close(conn, req.id, attempt, AttemptOutcome.RETRIED, error, now)
    return req


def finish(
    conn: sqlite3.Connection,
    request_id: str,
    attempt: int,
    status: Status,
    result: Result | None,
    error: ErrorInfo | None,
    now: float,
) -> Request:
    rules.check_finish_status(status)
    req = update_one(
        conn,
        "UPDATE requests SET status = ?, result = ?, error = ?, completed_at = ?, lease_owner = NULL, "
        f"lease_expires_at = NULL, seq = seq + 1, updated_at = ? WHERE id = ? AND {_HELD} "
        f"AND status IN {sql_in(sources_of(status))}",
        (
            status.value,
            dumps_opt(result.to_dict() if result else None),
            dumps_opt(error.to_dict() if error else None),
            now,
            now,
            request_id,
            attempt,
        ),
    )
    if req is None:
        raise rules.lease_lost(request_id, attempt)
    attempts.close(conn, req.id, attempt, AttemptOutcome(status.value), error, now)
    return end_request(conn, req, now)


def set_webhook(conn: sqlite3.Connection, request_id: str, url: str | None, now: float) -> Request:
    rules.webhook_settable(reads.get(conn, request_id))
    updated = update_one(
        conn, "UPDATE requests SET webhook_url = ?, updated_at = ? WHERE id = ?", (url, now, request_id)
    )
    if updated is None:  # not reachable under one writer
        raise rules.not_found(request_id)
    return updated


def request_cancel(conn: sqlite3.Connection, request_id: str, now: float) -> tuple[Request, str]:
    return _cancel(conn, request_id, now, None)


def _cancel(
    conn: sqlite3.Connection, request_id: str, now: float, reason: ErrorInfo | None
) -> tuple[Request, str]:
    req = reads.get(conn, request_id)
    if not rules.needs_cancel(req):
        return req, rules.cancel_mode(False)
    held = conn.execute(
        "SELECT lease_owner IS NOT NULL FROM requests WHERE id = ?", (request_id,)
    ).fetchone()[0]
    cancelled = update_one(
        conn,
        "UPDATE requests SET status = ?, completed_at = ?, lease_owner = NULL, lease_expires_at = NULL, "
        "error = COALESCE(?, error), seq = seq + 1, updated_at = ? "
        f"WHERE id = ? AND status IN {sql_in(sources_of(Status.CANCELLED))}",
        (Status.CANCELLED.value, now, dumps_opt(reason.to_dict() if reason else None), now, request_id),
    )
    if cancelled is None:  # not reachable under one writer
        raise rules.cancel_lost(request_id)
    if held:
        attempts.close_running(conn, request_id, AttemptOutcome.CANCELLED, now)
    return end_request(conn, cancelled, now), rules.cancel_mode(held)


def requeue_expired(conn: sqlite3.Connection, now: float) -> list[Request]:
    """Expired leases: a failure each; claimable again now, or failed once attempts are spent."""
    expired = conn.execute(
        f"SELECT id, attempt, failures, max_attempts FROM requests WHERE {rules.lease_expired('?')}",
        (now,),
    ).fetchall()
    return _lose(conn, expired, now, rules.LEASE_EXPIRED)


def register_worker(conn: sqlite3.Connection, worker_id: str, process: WorkerProcess, now: float) -> None:
    conn.execute(
        "INSERT INTO workers (id, host, node, pid, started, registered_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET host = excluded.host, node = excluded.node, pid = excluded.pid, "
        "started = excluded.started, registered_at = excluded.registered_at",
        (worker_id, process.host, process.node, process.pid, process.started, now),
    )


def requeue_dead(conn: sqlite3.Connection, worker_ids: list[str], now: float) -> list[Request]:
    """The leases of these dead workers, lost like expired ones; their rows are removed."""
    marks = ", ".join("?" * len(worker_ids))
    leased = conn.execute(
        "SELECT id, attempt, failures, max_attempts FROM requests "
        f"WHERE lease_owner IN ({marks}) AND status = ?",
        (*worker_ids, Status.PROCESSING.value),
    ).fetchall()
    conn.execute(f"DELETE FROM workers WHERE id IN ({marks})", worker_ids)
    return _lose(conn, leased, now, rules.WORKER_DIED)


def _lose(conn: sqlite3.Connection, leased: list[Any], now: float, cause: str) -> list[Request]:
    """Lost attempts (id, attempt, failures, max_attempts): a failure each; claimable again now,
    or failed once attempts are spent."""
    touched: list[Request] = []
    outcome = attempt_log.lost_outcome(cause)
    for request_id, attempt, failures, max_attempts in leased:
        spent = rules.attempts_spent(failures, max_attempts)
        error = rules.worker_lost(attempt, spent=spent, cause=cause)
        attempts.close(conn, request_id, attempt, outcome, error, now)  # first: retry_later's finds it ended
        if spent:
            touched.append(_fail_lost(conn, request_id, attempt, error, now))
        else:
            touched.append(retry_later(conn, request_id, attempt, now, error, now))
    return touched


def _fail_lost(
    conn: sqlite3.Connection, request_id: str, attempt: int, error: ErrorInfo, now: float
) -> Request:
    req = update_one(
        conn,
        "UPDATE requests SET status = ?, failures = failures + 1, error = ?, completed_at = ?, "
        "lease_owner = NULL, lease_expires_at = NULL, seq = seq + 1, updated_at = ? "
        f"WHERE id = ? AND {_HELD} AND status IN {sql_in(sources_of(Status.FAILED))}",
        (
            Status.FAILED.value,
            dumps(error.to_dict()),
            now,
            now,
            request_id,
            attempt,
        ),
    )
    assert req is not None  # selected above in the same transaction
    return end_request(conn, req, now)


# -- webhook outbox --------------------------------------------------------------------------------
def claim_outbox(
    conn: sqlite3.Connection, worker_id: str, limit: int, lease_seconds: float, now: float
) -> list[OutboxItem]:
    found = conn.execute(
        "UPDATE deliveries SET lease_owner = ?, lease_expires_at = ? WHERE id IN (SELECT id FROM deliveries "
        f"WHERE {rules.outbox_claimable('?')} ORDER BY next_attempt_at, rowid LIMIT ?) "
        f"RETURNING {rules.OUTBOX_COLUMNS}, rowid",
        (worker_id, now + lease_seconds, now, now, limit),
    ).fetchall()
    return rules.to_outbox(found, loads)


def record_attempt(
    conn: sqlite3.Connection,
    delivery_id: str,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    next_attempt_at: float | None,
    now: float,
) -> Delivery:
    row = conn.execute("SELECT state, attempts FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    if row is None:
        raise rules.delivery_not_found(delivery_id)
    state, next_attempt_at = rules.next_delivery_state(row[0], status_code, next_attempt_at)
    attempts = row[1]
    conn.execute(
        "INSERT INTO delivery_attempts VALUES (?, ?, ?, ?, ?, ?)",
        (delivery_id, attempts + 1, now, status_code, error, duration_ms),
    )
    conn.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, lease_owner = NULL, "
        "lease_expires_at = NULL WHERE id = ?",
        (state, attempts + 1, next_attempt_at, delivery_id),
    )
    return reads.deliveries(conn, "id = ?", delivery_id)[0]


def enqueue_redelivery(conn: sqlite3.Connection, request_id: str, now: float) -> Delivery:
    req = reads.get(conn, request_id)
    url = rules.redelivery_url(req)
    return add_delivery(conn, req.id, url, to_document(req), now)


# -- housekeeping ----------------------------------------------------------------------------------
def get_or_create_setting(conn: sqlite3.Connection, name: str, value: str, now: float) -> str:
    """Insert if absent, then read, under the writer's BEGIN IMMEDIATE: processes serialize on
    the write lock, so the first insert wins and every caller reads that one value."""
    conn.execute(
        "INSERT INTO settings (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        (name, value, now),
    )
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
    return str(row[0])


def probe_write(conn: sqlite3.Connection, now: float) -> None:
    conn.execute(
        "INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        (now,),
    )
