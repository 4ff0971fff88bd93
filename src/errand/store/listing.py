"""The list query both store backends share: its WHERE clause, order, page size and the opaque
keyset cursor. Pure: no I/O."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from errand.console_models import Match
from errand.errors import InvalidRequest
from errand.models import Page, Request, Status
from errand.store.rules import outlived_sql

MAX_PAGE = 1000
"""The largest page `list` returns, whatever limit is asked."""

Mark = Callable[[int, str], str]
"""The placeholder of parameter n (1-based) with its SQL type: `?` or `$n::type`."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of `list`: newest first, keyset-paginated on (created_at, id), tombstones out."""

    where: str
    params: list[Any]
    order: str
    size: int

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than the page, to know whether another follows."""
        return self.size + 1

    def page(self, found: list[Request]) -> Page:
        """The page of the `fetch` rows found, with the cursor of the next one if any."""
        page = found[: self.size]
        more = len(found) > self.size
        return Page(page, encode_cursor(page[-1].created_at, page[-1].id) if more else None)


def list_query(
    owner: str | None,
    user_id: str | None,
    status: Status | None,
    limit: int,
    cursor: str | None,
    *,
    mark: Mark,
    alias: str = "",
    cutoff: float | None = None,
    match: Match | None = None,
) -> ListQuery:
    """The WHERE clause, its parameters and the order of a `list` page: tombstones and (with a
    `cutoff`) the requests that outlived their result_ttl are left out. Each equality filter
    has an index (column, created_at, id) that yields the page in order (migration 0013)."""
    a = f"{alias}." if alias else ""
    where: list[str] = [f"{a}expired_at IS NULL"]
    params: list[Any] = []
    if cutoff is not None:
        params.append(cutoff)
        where.append(f"NOT {outlived_sql(mark(len(params), 'float8'), alias)}")
    m = match or Match()
    equal = (("owner", owner), ("user_id", user_id), ("status", status), ("agent", m.agent), ("kind", m.kind))
    for column, value in equal:
        if value is not None:
            params.append(str(value))
            where.append(f"{a}{column} = {mark(len(params), '')}")
    for op, bound in ((">=", m.since), ("<", m.until)):
        if bound is not None:
            params.append(float(bound))
            where.append(f"{a}created_at {op} {mark(len(params), 'float8')}")
    if cursor is not None:
        params += decode_cursor(cursor)
        after = f"({mark(len(params) - 1, 'float8')}, {mark(len(params), 'text')})"
        where.append(f"({a}created_at, {a}id) < {after}")
    order = f"{a}created_at DESC, {a}id DESC"
    return ListQuery(" AND ".join(where), params, order, max(1, min(limit, MAX_PAGE)))


def encode_cursor(created_at: float, request_id: str) -> str:
    """The opaque `next_cursor`: the (created_at, id) key of the last row of a page."""
    return base64.urlsafe_b64encode(orjson.dumps([created_at, request_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """InvalidRequest for anything `encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, request_id = orjson.loads(raw)
        if isinstance(created_at, int | float) and isinstance(request_id, str):
            return float(created_at), request_id
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise InvalidRequest("invalid cursor", details={"cursor": cursor})
