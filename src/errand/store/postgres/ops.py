"""The transaction bodies of the PostgreSQL backend: one function per multi-statement operation.

Each takes the connection `Database.run()` lent it (inside one transaction) and returns models;
raising undoes everything it wrote. Status changes are guarded twice: `can_transition()` here,
and `status = ANY(sources_of(new))` in the UPDATE, so a race can only lose, never corrupt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from errand.errors import Conflict, ErrandError, InvalidRequest, LeaseLost, StoreUnavailable
from errand.models import (
    Delivery,
    ErrorInfo,
    IdempotencyKey,
    NewRequest,
    OutboxItem,
    Request,
    Result,
    Status,
    can_transition,
    sources_of,
    to_document,
)
from errand.store import attempt_log, rules
from errand.store.postgres import fair_sql, sql
from errand.store.postgres.group_commit import GroupCommit, distinct_rounds, isolating
from errand.store.postgres.outbox_ops import add_deliveries
from errand.store.postgres.pool import Conn, Database, Row, jsonb


@dataclass(frozen=True, slots=True)
class Submission:
    """One submit waiting for its group commit (`now` is taken when the caller called)."""

    new: NewRequest
    now: float


def request_columns(new: NewRequest, now: float, waiting_on: str | None = None) -> tuple[Any, ...]:
    """The request fields in the order of SUBMIT_IDEMPOTENT's $1..$17 and SUBMIT_MANY's arrays."""
    return (
        new.id,
        new.owner,
        new.user_id,
        new.kind,
        new.agent,
        new.message,
        new.session_id,
        jsonb(dict(new.metadata)),
        new.trigger,
        new.webhook_url,
        new.mode.value,
        new.max_attempts,
        new.estimated_seconds,
        *fair_sql.fair_columns(new, now, waiting_on),
    )


def trace_param(new: NewRequest) -> Any:
    """The trace context parameter (SUBMIT_MANY's $20 elements, SUBMIT_IDEMPOTENT's $23)."""
    return None if new.trace_context is None else jsonb(new.trace_context)


@isolating
async def submit_many(db: Database, batch: list[Submission]) -> list[Row | ErrandError]:
    """Flush of the submit group commit: every request + `created` event in ONE statement (one
    commit, one NOTIFY). An id already stored, or twice in the batch, is a Conflict for that
    submit only; so is a value that cannot be encoded (found before the statement). A value
    PostgreSQL itself refuses fails the statement: then each submit is retried alone, so only
    the bad one fails."""
    refused: dict[int, InvalidRequest] = {}
    columns: dict[int, tuple[Any, ...]] = {}
    first: dict[str, int] = {}
    for n, item in enumerate(batch):
        try:
            columns[n] = request_columns(item.new, item.now)
        except InvalidRequest as exc:
            refused[n] = exc
            continue
        first.setdefault(item.new.id, n)
    unique = sorted(first.values())
    rows: list[Row] = []
    if unique:
        arrays = [list(column) for column in zip(*(columns[n] for n in unique), strict=True)]
        traces = [trace_param(batch[n].new) for n in unique]
        rows = await db.fetch(sql.SUBMIT_MANY, *arrays, [batch[n].now for n in unique], rules.CREATED, traces)
    by_id = {row["id"]: row for row in rows}
    return [
        refused[n]
        if n in refused
        else by_id[item.new.id]
        if first[item.new.id] == n and item.new.id in by_id
        else rules.already_exists(item.new.id)
        for n, item in enumerate(batch)
    ]


async def submit_keyed(
    conn: Conn, new: NewRequest, idem: IdempotencyKey, now: float, waiting_on: str | None = None
) -> tuple[Row | None, Request | None]:
    """(new row, None) when the key was free, else (None, the key's original request).
    A key past its 24 h (not purged yet) is freed and the submit tried again."""
    args = (
        *request_columns(new, now, waiting_on),
        now,
        rules.CREATED,
        *fair_sql.idem_args(idem),
        trace_param(new),
    )
    for _ in range(3):
        row = await conn.fetchrow(sql.SUBMIT_IDEMPOTENT, *args)
        if row is not None:
            return row, None
        found = await conn.fetchrow(sql.FIND_IDEMPOTENT, idem.scope, idem.key)
        if found is None:  # the key's request was dropped meanwhile: the key is free again
            continue
        if found["key_created_at"] <= rules.key_cutoff(now):
            await conn.execute(sql.DROP_IDEMPOTENT, idem.scope, idem.key, rules.key_cutoff(now))
            continue
        rules.check_fingerprint(idem, found["fingerprint"], found["id"])
        return None, rules.live(found["id"], rules.to_request(found))
    raise StoreUnavailable(f"idempotency key {idem.key!r} kept changing under us; try again")


def live(request_id: str, row: Row | None, cutoff: float | None = None) -> Request:
    """The live request of a row (see rules.live)."""
    return rules.live(request_id, None if row is None else rules.to_request(row), cutoff)


# -- a running attempt's writes (group-committed) ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Append:
    """One append_event waiting for its group commit."""

    request_id: str
    attempt: int
    progress: dict[str, Any] | None
    type: str
    data: dict[str, Any]
    now: float


@isolating
async def append_many(db: Database, batch: list[Append]) -> list[int | ErrandError]:
    """Flush of the append_event group commit: the new seq of each event, or LeaseLost. One
    statement (one commit) unless a request appears twice in the batch."""
    rounds = distinct_rounds(batch, lambda a: a.request_id)
    return await db.run(lambda c: _append_rounds(c, rounds, len(batch)), tx=len(rounds) > 1)


async def _append_rounds(
    conn: Conn, rounds: list[list[tuple[int, Append]]], size: int
) -> list[int | ErrandError]:
    outcomes: list[int | ErrandError] = [LeaseLost()] * size
    for items in rounds:
        rows = await conn.fetch(
            sql.APPEND_MANY,
            [a.request_id for _, a in items],
            [a.attempt for _, a in items],
            [a.progress for _, a in items],
            [a.type for _, a in items],
            [a.data for _, a in items],
            [a.now for _, a in items],
        )
        seqs = {row["request_id"]: row["seq"] for row in rows}
        for n, a in items:
            seq = seqs.get(a.request_id)
            outcomes[n] = seq if seq is not None else rules.lease_lost(a.request_id, a.attempt)
    return outcomes


@dataclass(frozen=True, slots=True)
class Finish:
    """One finish waiting for its group commit."""

    request_id: str
    attempt: int
    status: Status
    result: Result | None
    error: ErrorInfo | None
    now: float


@isolating
async def finish_many(db: Database, batch: list[Finish]) -> list[Request | ErrandError]:
    """Flush of the finish group commit, one transaction: terminal states, their events and
    outbox rows. Each item gets its request, or LeaseLost if its attempt was stale."""
    rounds = distinct_rounds(batch, lambda f: f.request_id)
    return await db.run(lambda c: _finish_rounds(c, rounds, len(batch)))


async def _finish_rounds(
    conn: Conn, rounds: list[list[tuple[int, Finish]]], size: int
) -> list[Request | ErrandError]:
    outcomes: list[Request | ErrandError] = [LeaseLost()] * size
    for items in rounds:
        rows = await conn.fetch(
            sql.FINISH_MANY,
            [f.request_id for _, f in items],
            [f.attempt for _, f in items],
            [f.status.value for _, f in items],
            [f.result.to_dict() if f.result else None for _, f in items],
            [f.error.to_dict() if f.error else None for _, f in items],
            [f.now for _, f in items],
            [",".join(sql.statuses(sources_of(f.status))) for _, f in items],
            [attempt_log.error_traceback(f.error) for _, f in items],
        )
        done = {req.id: req for req in map(rules.to_request, rows)}
        await end_requests(conn, list(done.values()))
        for n, f in items:
            req = done.get(f.request_id)
            outcomes[n] = req if req is not None else rules.lease_lost(f.request_id, f.attempt)
    return outcomes


async def retry_later(
    db: Database, request_id: str, attempt: int, run_at: float, error: ErrorInfo, now: float
) -> Request:
    """One fenced statement: lease released, a `retry` event, the attempt row closed."""
    data, tb = rules.retry_data(attempt, run_at, error), attempt_log.error_traceback(error)
    allowed = sql.statuses(sources_of(Status.PROCESSING))
    row = await db.fetchrow(
        sql.RETRY_LATER, request_id, attempt, run_at, error.to_dict(), now, data, allowed, tb
    )
    if row is None:
        raise rules.lease_lost(request_id, attempt)
    return rules.to_request(row)


async def heartbeat(
    db: Database, worker_id: str, attempts: dict[str, int], lease_seconds: float, now: float
) -> set[str]:
    """One statement extending every held lease; the ids no longer held."""
    if not attempts:
        return set()
    ids = list(attempts)
    rows = await db.fetch(sql.HEARTBEAT, ids, [attempts[i] for i in ids], worker_id, now + lease_seconds)
    return set(ids) - {row["id"] for row in rows}


# -- cancel and lost workers -------------------------------------------------------------------------
async def request_cancel(conn: Conn, rid: str, now: float, reason: Any = None) -> tuple[Request, str, bool]:
    """(request, how, changed). The row is locked first, so the decision and the write agree."""
    row = await conn.fetchrow(sql.LOCK_REQUEST, rid)
    req = live(rid, row)
    if not rules.needs_cancel(req):
        return req, rules.cancel_mode(False), False
    updated = await conn.fetchrow(sql.CANCEL, rid, now, sql.statuses(sources_of(Status.CANCELLED)), reason)
    if updated is None:  # not reachable with the row locked
        raise rules.cancel_lost(rid)
    cancelled = rules.to_request(updated)
    await end_requests(conn, [cancelled])
    await conn.execute(sql.NOTIFY_CANCEL, rid)
    held = row is not None and row["lease_owner"] is not None
    return cancelled, rules.cancel_mode(held), True


async def set_webhook(conn: Conn, rid: str, url: str | None, now: float) -> Request:
    """The row is locked first, so a concurrent finish either sees the new URL or ended before."""
    rules.webhook_settable(live(rid, await conn.fetchrow(sql.LOCK_REQUEST, rid)))
    updated = await conn.fetchrow(sql.SET_WEBHOOK, rid, url, now)
    if updated is None:  # not reachable with the row locked
        raise rules.not_found(rid)
    return rules.to_request(updated)


async def end_requests(conn: Conn, requests: list[Request]) -> None:
    """What every terminal write adds in the same transaction: the terminal event carrying the
    status document, and the webhook outbox row when the request has a webhook URL (both at
    the request's completed_at)."""
    if not requests:
        return
    await fair_sql.release_sessions(conn, requests)
    docs = [to_document(r) for r in requests]
    times = [r.completed_at or 0.0 for r in requests]
    await conn.execute(
        sql.INSERT_EVENTS,
        [r.id for r in requests],
        [r.seq for r in requests],
        [r.status.value for r in requests],
        [attempt_log.terminal_event_data(r, doc) for r, doc in zip(requests, docs, strict=True)],
        times,
    )
    hooked = [n for n, r in enumerate(requests) if r.webhook_url]
    if hooked:
        await add_deliveries(
            conn, [requests[n] for n in hooked], [docs[n] for n in hooked], [times[n] for n in hooked]
        )


async def requeue_expired(conn: Conn, now: float) -> list[Request]:
    """Expired leases: a failure each; claimable again now, or failed once attempts are spent.
    Rows another process is requeueing right now are skipped (SKIP LOCKED), never done twice."""
    return await lose(conn, await conn.fetch(sql.EXPIRED_LEASES, now), now, rules.LEASE_EXPIRED)


async def lose(conn: Conn, leased: Sequence[Row], now: float, cause: str) -> list[Request]:
    """Lost attempts (rows of id, attempt, failures, max_attempts, locked by the caller): a
    failure each; claimable again now, or failed once attempts are spent."""
    spent = [r for r in leased if rules.attempts_spent(r["failures"], r["max_attempts"])]
    requeue = [r for r in leased if not rules.attempts_spent(r["failures"], r["max_attempts"])]
    touched: list[Request] = []
    if requeue:
        errors = [rules.worker_lost(r["attempt"], spent=False, cause=cause) for r in requeue]
        requeued = await _lose_leases(conn, requeue, errors, now, Status.PROCESSING, cause)
        data = [rules.retry_data(r.attempt, now, e) for r, e in zip(requeued, errors, strict=True)]
        ids, seqs = [r.id for r in requeued], [r.seq for r in requeued]
        await conn.execute(sql.INSERT_EVENTS, ids, seqs, ["retry"] * len(data), data, [now] * len(data))
        await conn.execute(sql.NOTIFY_WORK)
        touched += requeued
    if spent:
        errors = [rules.worker_lost(r["attempt"], spent=True, cause=cause) for r in spent]
        failed = await _lose_leases(conn, spent, errors, now, Status.FAILED, cause)
        await end_requests(conn, failed)
        touched += failed
    return touched


async def _lose_leases(
    conn: Conn, rows: Sequence[Row], errors: list[ErrorInfo], now: float, status: Status, cause: str
) -> list[Request]:
    if not can_transition(Status.PROCESSING, status):  # pragma: no cover - the table allows both
        raise Conflict(f"processing -> {status.value} is not a transition")
    updated = await conn.fetch(
        sql.LOSE_LEASES,
        [r["id"] for r in rows],
        [r["attempt"] for r in rows],
        [e.to_dict() for e in errors],
        now,
        status.value,
        sql.statuses(sources_of(status)),
        now if status.is_terminal else None,
        attempt_log.lost_outcome(cause).value,
    )
    order = {r["id"]: n for n, r in enumerate(rows)}
    return sorted((rules.to_request(row) for row in updated), key=lambda r: order[r.id])


# -- webhook outbox (the rest is outbox_ops) --------------------------------------------------------
async def claim_outbox(
    db: Database, worker_id: str, limit: int, lease_seconds: float, now: float
) -> list[OutboxItem]:
    if limit <= 0:
        return []
    rows = await db.fetch(sql.CLAIM_OUTBOX, now, limit, worker_id, now + lease_seconds)
    return rules.to_outbox(rows)


async def enqueue_redelivery(conn: Conn, request_id: str, now: float) -> Delivery:
    req = live(request_id, await conn.fetchrow(sql.GET, request_id))
    rules.redelivery_url(req)
    [delivery] = await add_deliveries(conn, [req], [to_document(req)], [now])
    return delivery


class Batches:
    """The group commits of one store: concurrent submits, appends and finishes each share one
    statement; the pool is looked up at flush time (`database`)."""

    def __init__(self, database: Callable[[], Database]) -> None:
        self.submit: GroupCommit[Submission, Row] = GroupCommit(lambda b: submit_many(database(), b))
        self.append: GroupCommit[Append, int] = GroupCommit(lambda b: append_many(database(), b))
        self.finish: GroupCommit[Finish, Request] = GroupCommit(lambda b: finish_many(database(), b))

    async def wait_idle(self) -> None:
        """Every queued call flushed (at close)."""
        for batcher in (self.submit, self.append, self.finish):
            await batcher.wait_idle()
