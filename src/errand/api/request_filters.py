"""The request list's filters, read from a query string (GET /v1/requests) or a JSON filter
(the bulk cancel): status, agent, kind, user_id, since, until -- combined with AND.

One rule for both doors, so what the console's table shows is what a bulk action matches.
Every bad value is a 422 naming its field. Beside it, the dry run and confirmation every bulk
action (cancel, redeliver) takes: `BulkRun`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from errand.api.auth import USER_ID_RE
from errand.api.errors import json_response
from errand.console_models import Match
from errand.errors import Conflict, InvalidRequest
from errand.models import Status

KINDS = ("chat", "trigger", "schedule", "response")
MAX_AGENT = 200
FIELDS = ("status", "agent", "kind", "user_id", "since", "until")
MAX_BULK = 1000
"""Requests one bulk action (cancel, redeliver) acts on at most; the rest waits for the next call."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Parsed filters: `user_id` is an admin's or viewer's (a client lists its own user)."""

    status: Status | None = None
    user_id: str | None = None
    match: Match = field(default_factory=Match)


def parse_filters(values: Mapping[str, Any]) -> Filters:
    """Filters from query parameters or a JSON object (missing, null and "" mean unset)."""
    raw = {f: values.get(f) for f in FIELDS if values.get(f) not in (None, "")}
    status = _status(raw.get("status"))
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}", details={"field": "kind"})
    agent = raw.get("agent")
    if agent is not None and not (isinstance(agent, str) and len(agent) <= MAX_AGENT):
        raise InvalidRequest(
            f"agent must be an agent id of at most {MAX_AGENT} characters", details={"field": "agent"}
        )
    user = raw.get("user_id")
    if user is not None and not (isinstance(user, str) and USER_ID_RE.fullmatch(user)):
        raise InvalidRequest(
            "user_id must be 1-128 characters of letters, digits and _ . @ + : = -",
            details={"field": "user_id"},
        )
    since, until = _time(raw.get("since"), "since"), _time(raw.get("until"), "until")
    if since is not None and until is not None and until < since:
        raise InvalidRequest("until must not be before since", details={"field": "until"})
    return Filters(status, user, Match(agent=agent, kind=kind, since=since, until=until))


def _status(value: Any) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise InvalidRequest(f"status must be one of {allowed}", details={"field": "status"}) from None


def _time(value: Any, field: str) -> float | None:
    """Epoch seconds: a finite number >= 0 (a number or its text)."""
    if value is None:
        return None
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or seconds > 1e11:
        raise InvalidRequest(f"{field} must be a time in epoch seconds", details={"field": field})
    return seconds


def confirm(expect: int | None, matched: int) -> None:
    """A bulk run acts only on the set the operator confirmed: `expect` = the match count now."""
    if expect is None:
        raise InvalidRequest(
            "a run (dry_run: false) needs expect: the matched count", details={"field": "expect"}
        )
    if expect != matched:
        raise Conflict(
            f"the filter now matches {matched}, not {expect}: look again and confirm",
            details={"matched": matched, "expect": expect},
        )


class BulkRun(BaseModel):
    """The part of a bulk action's body that says whether it runs: a dry run (the default)
    only counts what it matches; a run needs `expect`, the count the operator saw."""

    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(default=True, description="Only count what the filter matches (default).")
    expect: int | None = Field(default=None, ge=0, description="The count the dry run answered.")

    def dry_run_answer(self, matched: int) -> Response | None:
        """A dry run's answer, `{"matched": n}`; None for a run, once `expect` confirms `matched`."""
        if self.dry_run:
            return json_response({"matched": matched})
        confirm(self.expect, matched)
        return None
