"""Rows <-> models for the SQLite backend: column lists, JSON columns and the list cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from errand.models import (
    Delivery,
    DeliveryAttempt,
    ErrorInfo,
    Event,
    Mode,
    NewRequest,
    Progress,
    Request,
    Result,
    Status,
)

REQUEST_COLUMNS = (
    "id, owner, user_id, kind, agent, message, session_id, metadata, trigger_name, webhook_url, mode, "
    "status, attempt, failures, max_attempts, progress, result, error, created_at, started_at, "
    "completed_at, run_at, estimated_seconds, seq, expired_at"
)
INSERT_REQUEST = (
    f"INSERT INTO requests ({REQUEST_COLUMNS}, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
EVENT_COLUMNS = "request_id, seq, type, data, at"
DELIVERY_COLUMNS = "id, request_id, url, state, next_attempt_at, created_at"
ATTEMPT_COLUMNS = "delivery_id, attempt, at, status_code, error, duration_ms"


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumps_opt(value: Any) -> str | None:
    return None if value is None else dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def sql_in(statuses: Sequence[Status]) -> str:
    """`('pending', 'processing')`: the transition table rendered for a WHERE clause."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


def new_request(new: NewRequest, now: float) -> Request:
    """The row `submit` inserts, as a model: pending, runnable now, seq 1 (the created event)."""
    return Request(
        id=new.id,
        owner=new.owner,
        user_id=new.user_id,
        kind=new.kind,
        agent=new.agent,
        message=new.message,
        session_id=new.session_id,
        metadata=dict(new.metadata),
        trigger=new.trigger,
        webhook_url=new.webhook_url,
        mode=new.mode,
        status=Status.PENDING,
        attempt=0,
        failures=0,
        max_attempts=new.max_attempts,
        progress=None,
        result=None,
        error=None,
        created_at=now,
        started_at=None,
        completed_at=None,
        run_at=now,
        estimated_seconds=new.estimated_seconds,
        seq=1,
    )


def request_params(r: Request, updated_at: float) -> tuple[Any, ...]:
    """Parameters for INSERT_REQUEST, in REQUEST_COLUMNS order."""
    return (
        r.id,
        r.owner,
        r.user_id,
        r.kind,
        r.agent,
        r.message,
        r.session_id,
        dumps(r.metadata),
        r.trigger,
        r.webhook_url,
        r.mode.value,
        r.status.value,
        r.attempt,
        r.failures,
        r.max_attempts,
        dumps_opt(r.progress.to_dict() if r.progress else None),
        dumps_opt(r.result.to_dict() if r.result else None),
        dumps_opt(r.error.to_dict() if r.error else None),
        r.created_at,
        r.started_at,
        r.completed_at,
        r.run_at,
        r.estimated_seconds,
        r.seq,
        None,
        updated_at,
    )


def to_request(row: Sequence[Any]) -> Request:
    """A row selected with REQUEST_COLUMNS."""
    return Request(
        id=row[0],
        owner=row[1],
        user_id=row[2],
        kind=row[3],
        agent=row[4],
        message=row[5],
        session_id=row[6],
        metadata=loads(row[7]) or {},
        trigger=row[8],
        webhook_url=row[9],
        mode=Mode(row[10]),
        status=Status(row[11]),
        attempt=row[12],
        failures=row[13],
        max_attempts=row[14],
        progress=Progress.from_dict(loads(row[15])),
        result=Result.from_dict(loads(row[16])),
        error=ErrorInfo.from_dict(loads(row[17])),
        created_at=row[18],
        started_at=row[19],
        completed_at=row[20],
        run_at=row[21],
        estimated_seconds=row[22],
        seq=row[23],
        expired=row[24] is not None,
    )


def to_event(row: Sequence[Any]) -> Event:
    """A row selected with EVENT_COLUMNS."""
    return Event(request_id=row[0], seq=row[1], type=row[2], data=loads(row[3]), at=row[4])


def to_attempt(row: Sequence[Any]) -> DeliveryAttempt:
    """A row selected with ATTEMPT_COLUMNS."""
    return DeliveryAttempt(
        delivery_id=row[0], attempt=row[1], at=row[2], status_code=row[3], error=row[4], duration_ms=row[5]
    )


def to_delivery(row: Sequence[Any], attempts: list[DeliveryAttempt]) -> Delivery:
    """A row selected with DELIVERY_COLUMNS, with its attempts."""
    return Delivery(
        id=row[0],
        request_id=row[1],
        url=row[2],
        state=row[3],
        attempts=attempts,
        next_attempt_at=row[4],
        created_at=row[5],
    )
