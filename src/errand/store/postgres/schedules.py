"""The schedule queries and transactions of the PostgreSQL backend, and `Schedules`, the face
PostgresStore delegates its schedule methods to.

`fire` locks the schedule row `FOR UPDATE SKIP LOCKED`: of several schedulers (in any number of
processes) reaching one fire time at once, one gets the row and the others skip it at once
("lost"), never waiting; the winner's commit has advanced next_fire_at, so a scheduler that
reads the row after it no longer finds it due. The firing's request id is unique per schedule
and fire time besides (`ON CONFLICT (id) DO NOTHING`): the primary key refuses a second firing.
"""

from __future__ import annotations

from collections.abc import Callable

from errand.clock import Clock
from errand.models import NewRequest, Request, Status
from errand.schedule_models import FireOutcome, Firing, Schedule
from errand.store import rules
from errand.store import schedule_rules as srules
from errand.store.postgres import ops, sql
from errand.store.postgres.listen import Hub
from errand.store.postgres.pool import Conn, Database, Row, jsonb
from errand.store.schedule_rules import DEFINITION_COLUMNS, SCHEDULE_COLUMNS

_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
INSERT = (
    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({', '.join(f'${n}' for n in range(1, 23))}) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
UPDATE = (
    f"UPDATE schedules SET {', '.join(f'{c} = ${n}' for n, c in enumerate(DEFINITION_COLUMNS, 1))} "
    f"WHERE id = ${len(DEFINITION_COLUMNS) + 1} RETURNING {SCHEDULE_COLUMNS}"
)
NAME_TAKEN = "SELECT 1 FROM schedules WHERE name = $1 AND id <> $2"
GET = f"{_SELECT} WHERE id = $1 UNION ALL ({_SELECT} WHERE name = $1 AND id <> $1) LIMIT 1"
LIST = f"{_SELECT} ORDER BY name"
DUE = f"{_SELECT} WHERE enabled AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2"
DELETE = "DELETE FROM schedules WHERE id = $1 RETURNING id"
LOCK = f"{_SELECT} WHERE id = $1 FOR UPDATE SKIP LOCKED"
STATUS_OF = "SELECT status FROM requests WHERE id = $1"
ADVANCE = (
    "UPDATE schedules SET next_fire_at = $2, last_fired_at = $3, last_request_id = $4, "
    "counted_request_id = $5, consecutive_failures = $6, enabled = $7, updated_at = $8 "
    f"WHERE id = $1 RETURNING {SCHEDULE_COLUMNS}"
)


def to_schedule(row: Row) -> Schedule:
    return srules.to_schedule(row, lambda value: value)


def get(row: Row | None, key: str) -> Schedule:
    if row is None:
        raise srules.schedule_not_found(key)
    return to_schedule(row)


async def create(conn: Conn, schedule: Schedule) -> Schedule:
    if await conn.fetchrow(INSERT, *srules.schedule_values(schedule, jsonb(schedule.data))) is None:
        raise srules.name_taken(schedule.name)
    return schedule


async def update(conn: Conn, schedule: Schedule) -> Schedule:
    if await conn.fetchrow(NAME_TAKEN, schedule.name, schedule.id) is not None:
        raise srules.name_taken(schedule.name)
    row = await conn.fetchrow(UPDATE, *srules.definition_values(schedule, jsonb(schedule.data)), schedule.id)
    return get(row, schedule.id)


async def delete(conn: Conn, schedule_id: str) -> None:
    if await conn.fetchrow(DELETE, schedule_id) is None:
        raise srules.schedule_not_found(schedule_id)


async def fire(conn: Conn, firing: Firing, now: float) -> tuple[FireOutcome, Request | None, Request | None]:
    """(outcome, the previous firing if it was cancelled, the new request if one was made)."""
    row = await conn.fetchrow(LOCK, firing.schedule_id)
    schedule = None if row is None else to_schedule(row)
    if schedule is None or not srules.still_due(schedule, firing):
        return FireOutcome("lost", schedule), None, None
    previous = await _status_of(conn, schedule.last_request_id)
    decision = srules.decide(schedule, firing, previous)
    cancelled = created = None
    last_request, last_fired = schedule.last_request_id, schedule.last_fired_at
    if decision.outcome == "fired" and firing.request is not None:
        created = await _submit(conn, firing.request, now)
        if created is None:  # this fire time already fired: the primary key said so
            return FireOutcome("lost", schedule), None, None
        last_request, last_fired = created.id, now
    if decision.cancel_previous and schedule.last_request_id is not None:
        cancelled, _, _ = await ops.request_cancel(conn, schedule.last_request_id, now)
    next_fire = schedule.next_fire_at if firing.due_at is None else firing.next_fire_at
    updated = get(
        await conn.fetchrow(
            ADVANCE,
            schedule.id,
            next_fire,
            last_fired,
            last_request,
            decision.counted,
            decision.failures,
            decision.enabled,
            now,
        ),
        schedule.id,
    )
    cancelled_id = cancelled.id if cancelled is not None else None
    return FireOutcome(decision.outcome, updated, created, cancelled_id), cancelled, created


async def _status_of(conn: Conn, request_id: str | None) -> Status | None:
    if request_id is None:
        return None
    value = await conn.fetchval(STATUS_OF, request_id)
    return None if value is None else Status(value)


async def _submit(conn: Conn, new: NewRequest, now: float) -> Request | None:
    """The request and its `created` event (and the work NOTIFY, sent at commit), or None when
    the id is taken."""
    columns = ([value] for value in ops.request_columns(new, now))
    rows = await conn.fetch(sql.SUBMIT_MANY, *columns, [now], rules.CREATED, [ops.trace_param(new)])
    return rules.to_request(rows[0]) if rows else None


class Schedules:
    """The Store's schedule methods on PostgreSQL: each one transaction (or one statement); a
    firing wakes this process's waiters after its commit (its NOTIFYs wake the others)."""

    __slots__ = ("_clock", "_database", "_hub")

    def __init__(self, database: Callable[[], Database], hub: Hub, clock: Clock) -> None:
        self._database, self._hub, self._clock = database, hub, clock

    async def create(self, schedule: Schedule) -> Schedule:
        return await self._database().run(lambda c: create(c, schedule))

    async def update(self, schedule: Schedule) -> Schedule:
        return await self._database().run(lambda c: update(c, schedule))

    async def get(self, key: str) -> Schedule:
        return get(await self._database().fetchrow(GET, key, read=True), key)

    async def list_all(self) -> list[Schedule]:
        return [to_schedule(r) for r in await self._database().fetch(LIST, read=True)]

    async def delete(self, schedule_id: str) -> None:
        await self._database().run(lambda c: delete(c, schedule_id))

    async def due(self, limit: int) -> list[Schedule]:
        rows = await self._database().fetch(DUE, self._clock.now(), limit, read=True)
        return [to_schedule(r) for r in rows]

    async def fire(self, firing: Firing) -> FireOutcome:
        now = self._clock.now()
        outcome, cancelled, created = await self._database().run(lambda c: fire(c, firing, now))
        if cancelled is not None:
            self._hub.cancel.set()
        self._hub.committed([r for r in (cancelled, created) if r is not None], work=created is not None)
        return outcome
