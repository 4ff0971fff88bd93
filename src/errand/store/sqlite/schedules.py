"""The schedule reads and writes of the SQLite backend: one plain function each, and
`Schedules`, the face SqliteStore delegates its schedule methods to.

Writes run on the writer (one transaction, one savepoint per op), so `fire` cannot race another
scheduler in this process or another: the writer's BEGIN IMMEDIATE serializes them, and the
second finds next_fire_at already advanced (`schedule_rules.still_due`). The firing's request
id is unique per schedule and fire time besides, so the primary key refuses a second insert.
"""

from __future__ import annotations

import functools
import sqlite3

from errand.clock import Clock
from errand.errors import Conflict
from errand.models import Request, Status
from errand.schedule_models import FireOutcome, Firing, Schedule
from errand.store import schedule_rules as srules
from errand.store.schedule_rules import DEFINITION_COLUMNS, SCHEDULE_COLUMNS
from errand.store.sqlite import writes
from errand.store.sqlite.connections import Readers, Writer
from errand.store.sqlite.rows import dumps, loads
from errand.store.sqlite.wakeups import Wakeups

_INSERT = f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({', '.join('?' * 22)})"
_UPDATE = (
    f"UPDATE schedules SET {', '.join(f'{c} = ?' for c in DEFINITION_COLUMNS)} "
    f"WHERE id = ? RETURNING {SCHEDULE_COLUMNS}"
)


def _one(conn: sqlite3.Connection, where: str, *params: object) -> Schedule | None:
    row = conn.execute(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE {where}", params).fetchone()
    return None if row is None else srules.to_schedule(row, loads)


def get(conn: sqlite3.Connection, key: str) -> Schedule:
    """By id, else by name; NotFound."""
    found = _one(conn, "id = ?", key) or _one(conn, "name = ?", key)
    if found is None:
        raise srules.schedule_not_found(key)
    return found


def list_all(conn: sqlite3.Connection) -> list[Schedule]:
    rows = conn.execute(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name").fetchall()
    return [srules.to_schedule(row, loads) for row in rows]


def due(conn: sqlite3.Connection, now: float, limit: int) -> list[Schedule]:
    rows = conn.execute(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE enabled = 1 AND next_fire_at <= ? "
        "ORDER BY next_fire_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [srules.to_schedule(row, loads) for row in rows]


def create(conn: sqlite3.Connection, schedule: Schedule) -> Schedule:
    if _one(conn, "name = ?", schedule.name) is not None:
        raise srules.name_taken(schedule.name)
    try:
        conn.execute(_INSERT, srules.schedule_values(schedule, dumps(schedule.data)))
    except sqlite3.IntegrityError as exc:
        raise srules.name_taken(schedule.name) from exc
    return schedule


def update(conn: sqlite3.Connection, schedule: Schedule) -> Schedule:
    """The definition, enabled, failures and next fire time; NotFound; Conflict on a taken name."""
    try:
        row = conn.execute(
            _UPDATE, (*srules.definition_values(schedule, dumps(schedule.data)), schedule.id)
        ).fetchone()
    except sqlite3.IntegrityError as exc:
        raise srules.name_taken(schedule.name) from exc
    if row is None:
        raise srules.schedule_not_found(schedule.id)
    return srules.to_schedule(row, loads)


def delete(conn: sqlite3.Connection, schedule_id: str) -> None:
    if conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 0:
        raise srules.schedule_not_found(schedule_id)


def fire(
    conn: sqlite3.Connection, firing: Firing, now: float
) -> tuple[FireOutcome, Request | None, Request | None]:
    """(outcome, the previous firing if it was cancelled, the new request if one was made)."""
    schedule = _one(conn, "id = ?", firing.schedule_id)
    if schedule is None or not srules.still_due(schedule, firing):
        return FireOutcome("lost", schedule), None, None
    previous = _status_of(conn, schedule.last_request_id)
    decision = srules.decide(schedule, firing, previous)
    cancelled = created = None
    last_request, last_fired = schedule.last_request_id, schedule.last_fired_at
    if decision.outcome == "fired" and firing.request is not None:
        try:
            created, _ = writes.submit(conn, firing.request, None, now)
        except Conflict:  # this fire time already fired (next_fire_at was set back to it)
            return FireOutcome("lost", schedule), None, None
        last_request, last_fired = created.id, now
    if decision.cancel_previous and schedule.last_request_id is not None:
        cancelled, _ = writes.request_cancel(conn, schedule.last_request_id, now)
    next_fire = schedule.next_fire_at if firing.due_at is None else firing.next_fire_at
    row = conn.execute(
        "UPDATE schedules SET next_fire_at = ?, last_fired_at = ?, last_request_id = ?, "
        "counted_request_id = ?, consecutive_failures = ?, enabled = ?, updated_at = ? "
        f"WHERE id = ? RETURNING {SCHEDULE_COLUMNS}",
        (
            next_fire,
            last_fired,
            last_request,
            decision.counted,
            decision.failures,
            decision.enabled,
            now,
            schedule.id,
        ),
    ).fetchone()
    updated = srules.to_schedule(row, loads)
    cancelled_id = cancelled.id if cancelled is not None else None
    return FireOutcome(decision.outcome, updated, created, cancelled_id), cancelled, created


def _status_of(conn: sqlite3.Connection, request_id: str | None) -> Status | None:
    if request_id is None:
        return None
    row = conn.execute("SELECT status, expired_at FROM requests WHERE id = ?", (request_id,)).fetchone()
    return None if row is None else Status(row[0])


class Schedules:
    """The Store's schedule methods on SQLite: reads on the readers, writes on the writer (one
    transaction each); a firing wakes the workers (and cancels) after its commit."""

    __slots__ = ("_clock", "_readers", "_wake", "_writer")

    def __init__(self, writer: Writer, readers: Readers, wake: Wakeups, clock: Clock) -> None:
        self._writer, self._readers, self._wake, self._clock = writer, readers, wake, clock

    async def create(self, schedule: Schedule) -> Schedule:
        return await self._writer.submit(lambda c: create(c, schedule))

    async def update(self, schedule: Schedule) -> Schedule:
        return await self._writer.submit(lambda c: update(c, schedule))

    async def get(self, key: str) -> Schedule:
        return await self._readers.run(lambda c: get(c, key))

    async def list_all(self) -> list[Schedule]:
        return await self._readers.run(list_all)

    async def delete(self, schedule_id: str) -> None:
        await self._writer.submit(lambda c: delete(c, schedule_id))

    async def due(self, limit: int) -> list[Schedule]:
        now = self._clock.now()
        return await self._readers.run(lambda c: due(c, now, limit))

    async def fire(self, firing: Firing) -> FireOutcome:
        one = functools.partial(fire, firing=firing, now=self._clock.now())
        outcome, _, _ = await self._writer.submit(one, self._wake.after_fire)
        return outcome
