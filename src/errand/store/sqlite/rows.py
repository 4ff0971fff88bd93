"""Models -> SQLite rows: JSON kept as text, and the INSERT of a new request.

Reading rows back into models is shared with PostgreSQL (`store.rules`); `loads` is the
SQLite half of it (SQLite has no JSON column type, so JSON columns hold text).
"""

from __future__ import annotations

from typing import Any

import orjson

from errand.models import NewRequest, Request, Status
from errand.store.rules import REQUEST_COLUMNS, unstorable

INSERT_REQUEST = (
    f"INSERT INTO requests ({REQUEST_COLUMNS}, updated_at, sort_key) "
    f"VALUES ({', '.join('?' * (len(REQUEST_COLUMNS.split(',')) + 2))})"
)


def dumps(value: Any) -> str:
    """JSON text of a value; one the encoder refuses is InvalidRequest (that call's only)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise unstorable(exc) from None


def dumps_opt(value: Any) -> str | None:
    return None if value is None else dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def new_request(new: NewRequest, now: float, waiting_on: str | None = None) -> Request:
    """The row `submit` inserts, as a model: pending, runnable now (unless held: `waiting_on`),
    seq 1 (the created event)."""
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
        priority=new.priority,
        fairness_key=new.turn_key,
        waiting_on=waiting_on,
        trace_context=new.trace_context,
    )


def request_params(r: Request, updated_at: float, sort_key: float) -> tuple[Any, ...]:
    """Parameters for INSERT_REQUEST, in REQUEST_COLUMNS order, then updated_at and sort_key."""
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
        r.priority,
        r.fairness_key,
        r.waiting_on,
        dumps_opt(r.trace_context),
        None,  # input_request: a new request asked nothing yet
        None,  # inputs
        None,  # input_state
        updated_at,
        sort_key,
    )
