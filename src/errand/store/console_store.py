"""The console part of the one Store protocol (`store.base.Store` inherits it).

Kept in its own module only so base.py stays small; the guarantees are the Store's own, held by
the same contract suite on every backend.
"""

from __future__ import annotations

import builtins
from typing import Protocol

from errand.console_models import ConsoleSession, CountRow, DeliveryPage, Match, Overview
from errand.models import Status


class ConsoleStore(Protocol):
    """The console: sign-in sessions, the overview's counts, and the bulk actions' matches."""

    async def create_session(self, session: ConsoleSession) -> None:
        """Store a console sign-in, committed before returning, seen at once by every process on
        this database."""
        ...

    async def get_session(self, id_hash: str) -> ConsoleSession | None:
        """The session with this id hash, or None when unknown, deleted, or expired
        (expires_at <= now: dead to readers at once, before any purge)."""
        ...

    async def delete_session(self, id_hash: str) -> bool:
        """Revoke a session (sign-out) for every process at once; False when there was none."""
        ...

    async def purge_console(self) -> int:
        """Housekeeping: delete the expired sessions and the overview's rollup minutes older
        than a day. Returns how many rows went."""
        ...

    async def console_counts(self) -> tuple[CountRow, ...]:
        """Live (not tombstoned) requests counted by (status, agent, user), the user kept only
        for pending and processing ones; groups at zero left out. Read from the count rows the
        triggers of migration 0013 append in the transaction of every change, folded when they
        grew past queue.FOLD_AT: its cost follows the changes since the last read, not the
        table. (Terminal requests past result_ttl but not yet purged are still counted.)"""
        ...

    async def overview(self, window: float = 3600.0) -> Overview:
        """Everything GET /v1/admin/overview shows, each part a bounded read: console_counts;
        the oldest pending created_at; the newest 50 running requests (processing under a
        lease) with their worker; the per-minute rollup of finishes (completed, failed: count
        and duration bucket, written by the finish's own transaction) of the minutes in the
        last `window` seconds; deliveries unsent and failed now, and the delivery attempts of
        the window that succeeded or failed; registered workers with their lease counts and
        the latest expiry among their leases (moved by claim and heartbeat)."""
        ...

    async def list_all_deliveries(self, state: str | None, limit: int, cursor: str | None) -> DeliveryPage:
        """Deliveries across requests, newest first (created_at, id), with their attempts, in
        `state` (console_models.DELIVERY_STATES; `pending` includes retrying; None: any),
        keyset-paginated by the opaque `next_cursor` (InvalidRequest for one it did not make)."""
        ...

    async def queued_matching(
        self, status: Status | None, user_id: str | None, match: Match, limit: int
    ) -> tuple[int, builtins.list[str]]:
        """The bulk cancel's match: how many pending or processing requests fit the list's
        filters (status, user, `match`), and the ids of the oldest `limit` of them."""
        ...

    async def failed_deliveries_matching(self, limit: int) -> tuple[int, builtins.list[str]]:
        """The bulk redeliver's match: how many requests have a failed latest delivery, and the
        ids of the `limit` whose failed delivery is oldest."""
        ...
