"""Model values for tests that need one without a store: a stored Request with every field set."""

from __future__ import annotations

import dataclasses
from typing import Any

from errand.models import Mode, Request, Status

_REQUEST = Request(
    id="req_1",
    owner="k",
    user_id="0",
    kind="chat",
    agent="echo",
    message="hi",
    session_id=None,
    metadata={},
    trigger=None,
    webhook_url=None,
    mode=Mode.ASYNC,
    status=Status.COMPLETED,
    attempt=1,
    failures=0,
    max_attempts=3,
    progress=None,
    result=None,
    error=None,
    created_at=1.0,
    started_at=2.0,
    completed_at=3.0,
    run_at=1.0,
    estimated_seconds=None,
    seq=3,
)


def stored_request(**changes: Any) -> Request:
    """A completed chat request `req_1` (attempt 1 of 3, ran from t=2 to t=3), with `changes`."""
    return dataclasses.replace(_REQUEST, **{"metadata": {}, **changes})
