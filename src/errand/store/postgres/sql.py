"""The SQL of the PostgreSQL backend as named constants (rows -> models: `store.rules`).

Status guards are rendered from `models` (`sources_of`, `TERMINAL`), so the transition table
stays the single source of truth. Every write that adds an event also calls `pg_notify` in the
same statement or transaction: PostgreSQL delivers notifications at COMMIT, so a listener is
never woken for a change it cannot read yet. Channels: `errand_work` (new work), `errand_change`
(payload `"<request id> <seq>"`), `errand_cancel` (payload: request id), `errand_outbox`.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence

from errand.models import TERMINAL, Status
from errand.store import attempt_log
from errand.store.attempt_log import RUNNING
from errand.store.rules import (
    ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    OUTBOX_COLUMNS,
    PROBE_LOCK_WAIT,
    REQUEST_COLUMNS,
    claimable,
    held,
    lease_expired,
    outbox_claimable,
    outlived_sql,
    qualified,
    summary_columns,
)

CH_WORK, CH_CHANGE, CH_CANCEL, CH_OUTBOX = "errand_work", "errand_change", "errand_cancel", "errand_outbox"
CHANNELS = (CH_WORK, CH_CHANGE, CH_CANCEL, CH_OUTBOX)
MIGRATION_LOCK = 0x6572_7261_6E64  # "errand": the advisory lock that serializes migrate()


def statuses(values: Sequence[Status] | frozenset[Status]) -> list[str]:
    """A status set as a text[] parameter: the transition table handed to a WHERE clause."""
    return sorted(s.value for s in values)


def mark(n: int, type: str) -> str:
    """The placeholder of parameter n, cast when the type is not inferred (see listing.list_query)."""
    return f"${n}::{type}" if type else f"${n}"


TERMINAL_VALUES = statuses(TERMINAL)
# Every query returning requests selects these first, in this order (rows are read by position).
_R = qualified(REQUEST_COLUMNS, "r")
# A held attempt (see rules.held). Parameters $1 = id, $2 = attempt.
_HELD = f"r.id = $1 AND {held('$2', 'r')}"
_NOTIFY_CHANGE = f"pg_notify('{CH_CHANGE}', e.request_id || ' ' || e.seq)"

# -- write side ------------------------------------------------------------------------------------
_REQUEST_FIELDS = (
    "id, owner, user_id, kind, agent, message, session_id, metadata, trigger_name, webhook_url, mode, "
    "max_attempts, estimated_seconds, priority, fairness_key, waiting_on, sort_key"
)
# A key with new work joins the current round (the smallest turn) unless it is in one. DO UPDATE
# (not NOTHING) so the key row stays locked until commit: a claim dropping the key as empty
# waits for this submit and then sees its row (see errand_fair_claim, migration 0016).
_ADD_KEYS = """
    f AS (INSERT INTO fair_keys (key, next_turn)
          SELECT DISTINCT r.fairness_key, COALESCE((SELECT min(next_turn) FROM fair_keys), 0)
          FROM r ORDER BY 1
          ON CONFLICT (key) DO UPDATE SET next_turn = fair_keys.next_turn)"""
# The group commit of submits: $1..$17 arrays of the request fields, $18 their submit times, $19
# created-event data, $20 their trace contexts. One statement = one implicit transaction and
# one round trip for the whole batch: rows, events, fairness keys and wake-ups. An id already
# taken inserts nothing and returns no row.
SUBMIT_MANY = f"""
    WITH r AS (
        INSERT INTO requests AS r ({_REQUEST_FIELDS}, created_at, trace_context, status, run_at, seq,
            updated_at)
        SELECT x.*, 'pending', x.created_at, 1, x.created_at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::jsonb[], $9::text[], $10::text[], $11::text[], $12::int[], $13::float8[],
                    $14::int[], $15::text[], $16::text[], $17::float8[],
                    $18::float8[], $20::jsonb[]) AS x({_REQUEST_FIELDS}, created_at, trace_context)
        ON CONFLICT (id) DO NOTHING
        RETURNING {_R}),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, 1, 'created', $19::jsonb, r.created_at FROM r RETURNING request_id, seq),
    {_ADD_KEYS}
    SELECT r.*, pg_notify('{CH_WORK}', ''), {_NOTIFY_CHANGE} FROM r JOIN e ON e.request_id = r.id"""
# One submit with an idempotency key ($1..$17 request fields, $18 now, $19 created-event data,
# $20 scope, $21 key, $22 fingerprint, $23 trace context): the key is inserted first and the
# request only if the key was new; no row back means the key exists (see FIND_IDEMPOTENT). A
# concurrent insert of the same key waits for the first to commit. A taken id fails the statement
# (unique violation).
SUBMIT_IDEMPOTENT = f"""
    WITH k AS (INSERT INTO idempotency (scope, key, fingerprint, request_id, created_at)
               VALUES ($20, $21, $22, $1, $18) ON CONFLICT DO NOTHING RETURNING request_id),
    r AS (
        INSERT INTO requests AS r ({_REQUEST_FIELDS}, status, created_at, run_at, seq, updated_at,
            trace_context)
        SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::jsonb, $9::text,
            $10::text, $11::text, $12::int, $13::float8, $14::int, $15::text, $16::text, $17::float8,
            'pending', $18::float8, $18, 1, $18, $23::jsonb
        WHERE EXISTS (SELECT 1 FROM k)
        RETURNING {_R}),
    e AS (INSERT INTO events (request_id, seq, type, data, at)
          SELECT r.id, r.seq, 'created', $19::jsonb, $18 FROM r RETURNING request_id, seq),
    {_ADD_KEYS}
    SELECT r.*, pg_notify('{CH_WORK}', ''), {_NOTIFY_CHANGE} FROM r, e"""
FIND_IDEMPOTENT = f"""
    SELECT {_R}, k.fingerprint, k.created_at AS key_created_at
    FROM idempotency k JOIN requests r ON r.id = k.request_id
    WHERE k.scope = $1 AND k.key = $2"""
DROP_IDEMPOTENT = "DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND created_at <= $3"

# -- read side -------------------------------------------------------------------------------------
GET = f"SELECT {_R} FROM requests r WHERE r.id = $1"
SEQ_OF = "SELECT seq FROM requests WHERE id = $1"
EVENTS_SINCE = f"""
    SELECT {EVENT_COLUMNS} FROM events
    WHERE request_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"""
LIST = f"SELECT {summary_columns('r')} FROM requests r WHERE {{where}} ORDER BY {{order}} LIMIT {{limit}}"
DURATIONS = """
    SELECT completed_at - started_at AS seconds FROM requests
    WHERE agent = $1 AND status = 'completed' AND started_at IS NOT NULL
    ORDER BY completed_at DESC LIMIT $2"""
TERMINAL_AMONG = "SELECT id FROM requests WHERE id = ANY($1::text[]) AND status = ANY($2::text[])"

LIST_ATTEMPTS = f"SELECT {attempt_log.COLUMNS} FROM attempts WHERE request_id = $1 ORDER BY attempt"

# -- work ------------------------------------------------------------------------------------------
# Closing the attempt a write ended (a CTE body over the updated request rows `r`: their attempt
# number and error), formatted with its end time, outcome, traceback and FROM list.
_CLOSE_ATTEMPT = f"""
        UPDATE attempts t SET ended_at = {{at}}, outcome = {{outcome}}, error = r.error,
            traceback = {{traceback}}
        FROM {{source}} WHERE t.request_id = r.id AND t.attempt = r.attempt AND t.outcome = '{RUNNING}'"""
# $1 now, $2 limit, $3 worker, $4 lease expiry. SKIP LOCKED: claimers never wait on each other
# and never take the same row.
CLAIM = f"""
    WITH c AS (
        SELECT id FROM requests
        WHERE {claimable("$1")}
        ORDER BY run_at, pos LIMIT $2
        FOR UPDATE SKIP LOCKED),
    r AS (
        UPDATE requests r SET status = 'processing', attempt = r.attempt + 1, lease_owner = $3,
            lease_expires_at = $4, started_at = COALESCE(r.started_at, $1), seq = r.seq + 1, updated_at = $1
        FROM c WHERE r.id = c.id
        RETURNING {_R}, r.pos),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, r.seq, 'started', jsonb_build_object('status', r.status, 'attempt', r.attempt), $1
        FROM r RETURNING request_id, seq),
    a AS (
        INSERT INTO attempts (request_id, attempt, worker_id, started_at)
        SELECT r.id, r.attempt, $3, $1 FROM r)
    SELECT r.*, {_NOTIFY_CHANGE} FROM r JOIN e ON e.request_id = r.id
    ORDER BY r.run_at, r.pos"""
# Statements that update several requests and may wait for row locks take them in id order first
# (`_LOCKED`): two such statements can then never wait on each other in a cycle (no deadlock).
# The others never wait: claim, requeue and purge use SKIP LOCKED, the rest touch one row.
_LOCKED = "l AS MATERIALIZED (SELECT id FROM requests WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE)"
# $1 ids, $2 attempts, $3 worker, $4 new lease expiry
HEARTBEAT = f"""
    WITH {_LOCKED}
    UPDATE requests r SET lease_expires_at = $4
    FROM l, unnest($1::text[], $2::int[]) AS h(id, attempt)
    WHERE r.id = l.id AND r.id = h.id AND {held("h.attempt", "r")} AND r.lease_owner = $3
    RETURNING r.id"""
# The group commit of append_event, for requests that are distinct within the batch: $1 ids,
# $2 attempts, $3 progress (NULL: unchanged), $4 types, $5 data, $6 times. Each row is fenced on
# its attempt like a single append; a stale one simply returns no row.
APPEND_MANY = f"""
    WITH {_LOCKED},
    x AS (SELECT * FROM unnest($1::text[], $2::int[], $3::jsonb[], $4::text[], $5::jsonb[], $6::float8[])
          AS x(id, attempt, progress, type, data, at)),
    r AS (
        UPDATE requests r SET seq = r.seq + 1, progress = COALESCE(x.progress, r.progress), updated_at = x.at
        FROM l, x
        WHERE r.id = l.id AND r.id = x.id AND {held("x.attempt", "r")}
        RETURNING r.id, r.seq),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, r.seq, x.type, x.data, x.at FROM r JOIN x ON x.id = r.id RETURNING request_id, seq)
    SELECT e.request_id, e.seq, {_NOTIFY_CHANGE} FROM e"""
# $1 id, $2 attempt, $3 run_at, $4 error, $5 now, $6 event data, $7 allowed-from, $8 traceback
RETRY_LATER = f"""
    WITH r AS (
        UPDATE requests r SET failures = r.failures + 1, lease_owner = NULL, lease_expires_at = NULL,
            run_at = $3, error = $4::jsonb, seq = r.seq + 1, updated_at = $5
        WHERE {_HELD} AND r.status = ANY($7::text[]) RETURNING {_R}),
    e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT r.id, r.seq, 'retry', $6::jsonb, $5
        FROM r RETURNING request_id, seq),
    a AS ({_CLOSE_ATTEMPT.format(at="$5", outcome="'retried'", traceback="$8::text", source="r")})
    SELECT r.*, {_NOTIFY_CHANGE}, CASE WHEN $3 <= $5 THEN pg_notify('{CH_WORK}', '') END FROM r, e"""
# The group commit of finish, for requests distinct within the batch: $1 ids, $2 attempts,
# $3 terminal statuses, $4 results, $5 errors, $6 times, $7 per row the statuses it may leave
# (sources_of(new status), comma-separated), $8 tracebacks. Fenced per row; a stale one returns
# no row (and closes no attempt).
FINISH_MANY = f"""
    WITH {_LOCKED},
    x AS (SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::jsonb[], $5::jsonb[], $6::float8[],
            $7::text[], $8::text[]) AS x(id, attempt, status, result, error, at, allowed, traceback)),
    r AS (
        UPDATE requests r SET status = x.status, result = x.result, error = x.error, completed_at = x.at,
            lease_owner = NULL, lease_expires_at = NULL, seq = r.seq + 1, updated_at = x.at
        FROM l, x
        WHERE r.id = l.id AND r.id = x.id AND {held("x.attempt", "r")}
            AND r.status = ANY(string_to_array(x.allowed, ','))
        RETURNING {_R}),
    a AS ({
    _CLOSE_ATTEMPT.format(
        at="r.completed_at", outcome="r.status", traceback="x.traceback", source="r JOIN x ON x.id = r.id"
    )
})
    SELECT r.* FROM r"""
LOCK_REQUEST = f"SELECT {_R}, r.lease_owner FROM requests r WHERE r.id = $1 FOR UPDATE"
# $1 id, $2 now, $3 allowed-from, $4 the reason (an error, e.g. superseded; NULL: none). The
# attempt running, if any, ends cancelled.
CANCEL = f"""
    WITH r AS (
        UPDATE requests r SET status = 'cancelled', completed_at = $2, lease_owner = NULL,
            lease_expires_at = NULL, error = COALESCE($4::jsonb, r.error), seq = r.seq + 1, updated_at = $2
        WHERE r.id = $1 AND r.status = ANY($3::text[]) RETURNING {_R}),
    a AS (
        UPDATE attempts t SET ended_at = $2, outcome = 'cancelled'
        FROM r WHERE t.request_id = r.id AND t.outcome = '{RUNNING}')
    SELECT r.* FROM r"""
# $1 id, $2 the URL (NULL: none), $3 now; the row is locked (LOCK_REQUEST) and checked first.
SET_WEBHOOK = f"UPDATE requests r SET webhook_url = $2, updated_at = $3 WHERE r.id = $1 RETURNING {_R}"
NOTIFY_CANCEL = f"SELECT pg_notify('{CH_CANCEL}', $1)"
EXPIRED_LEASES = f"""
    SELECT id, attempt, failures, max_attempts FROM requests
    WHERE {lease_expired("$1")}
    ORDER BY lease_expires_at
    FOR UPDATE SKIP LOCKED"""
# A lost worker's attempts, fenced like any other write: $1 ids, $2 attempts, $3 errors, $4 now,
# $5 new status, $6 allowed-from, $7 completed_at (NULL when requeued), $8 the attempts' outcome.
# Requeued rows keep status processing and become claimable now; spent ones fail.
LOSE_LEASES = f"""
    WITH r AS (
        UPDATE requests r SET status = $5, failures = r.failures + 1, error = x.error, lease_owner = NULL,
            lease_expires_at = NULL, run_at = $4, completed_at = $7::float8, seq = r.seq + 1, updated_at = $4
        FROM unnest($1::text[], $2::int[], $3::jsonb[]) AS x(id, attempt, error)
        WHERE r.id = x.id AND {held("x.attempt", "r")} AND r.status = ANY($6::text[])
        RETURNING {_R}),
    a AS ({_CLOSE_ATTEMPT.format(at="$4", outcome="$8::text", traceback="NULL", source="r")})
    SELECT r.* FROM r"""
# Events of several requests at once (terminal and requeue paths): $1 ids, $2 seqs, $3 types,
# $4 data, $5 times.
INSERT_EVENTS = f"""
    WITH e AS (
        INSERT INTO events (request_id, seq, type, data, at)
        SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::jsonb[], $5::float8[])
        RETURNING request_id, seq)
    SELECT {_NOTIFY_CHANGE} FROM e"""
NOTIFY_WORK = f"SELECT pg_notify('{CH_WORK}', '')"

# -- registered workers (see `workers`) -------------------------------------------------------------
WORKER_LOCK_CLASS = 0x45524E44  # "ERND": classid of every worker's session advisory lock
NEXT_LOCK_KEY = "SELECT nextval('workers_lock_key')::int"
TRY_WORKER_LOCK = f"SELECT pg_try_advisory_lock({WORKER_LOCK_CLASS}, $1)"
UNLOCK_WORKER = f"SELECT pg_advisory_unlock({WORKER_LOCK_CLASS}, $1)"
# $1 id, $2 host, $3 node, $4 pid, $5 started, $6 lock key, $7 now; run on the lock's own session
REGISTER_WORKER = """
    INSERT INTO workers (id, host, node, pid, started, lock_key, backend_pid, registered_at)
    VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid(), $7)
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, node = excluded.node, pid = excluded.pid,
        started = excluded.started, lock_key = excluded.lock_key, backend_pid = excluded.backend_pid,
        registered_at = excluded.registered_at"""
# Every registered worker, and whether its session lock is held now (pg_locks is read once).
WORKERS = f"""
    WITH held AS MATERIALIZED (
        SELECT objid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND classid = {WORKER_LOCK_CLASS}::oid AND objsubid = 2
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
    SELECT w.id, w.host, w.node, w.pid, w.started, w.lock_key,
        w.lock_key::oid IN (SELECT objid FROM held) AS locked
    FROM workers w"""
# Dead workers ($1 ids, $2 the lock keys they were judged by): a worker that registered again
# meanwhile has another key and is kept.
FORGET_WORKERS = """
    DELETE FROM workers w USING unnest($1::text[], $2::int[]) AS x(id, lock_key)
    WHERE w.id = x.id AND w.lock_key = x.lock_key RETURNING w.id"""
LEASES_OF = f"""
    SELECT id, attempt, failures, max_attempts FROM requests
    WHERE lease_owner = ANY($1::text[]) AND status = '{Status.PROCESSING.value}'
    ORDER BY id FOR UPDATE"""

# -- webhook outbox --------------------------------------------------------------------------------
# $1 ids, $2 request ids, $3 urls, $4 bodies, $5 times (due at once)
INSERT_DELIVERIES = f"""
    WITH d AS (
        INSERT INTO deliveries (id, request_id, url, body, state, attempts, next_attempt_at, created_at)
        SELECT x.id, x.request_id, x.url, x.body, 'pending', 0, x.at, x.at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::float8[])
            AS x(id, request_id, url, body, at)
        RETURNING id)
    SELECT count(*), pg_notify('{CH_OUTBOX}', '') FROM d"""
# $1 now, $2 limit, $3 worker, $4 lease expiry
CLAIM_OUTBOX = f"""
    WITH c AS (
        SELECT id FROM deliveries
        WHERE {outbox_claimable("$1")}
        ORDER BY next_attempt_at, pos LIMIT $2
        FOR UPDATE SKIP LOCKED)
    UPDATE deliveries d SET lease_owner = $3, lease_expires_at = $4
    FROM c WHERE d.id = c.id
    RETURNING {qualified(OUTBOX_COLUMNS, "d")}, d.pos"""
LOCK_DELIVERY = "SELECT state, attempts FROM deliveries WHERE id = $1 FOR UPDATE"
# $1 id, $2 attempt no., $3 now, $4 status code, $5 error, $6 duration, $7 state, $8 next attempt
RECORD_ATTEMPT = """
    WITH a AS (
        INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
        VALUES ($1, $2, $3, $4, $5, $6))
    UPDATE deliveries SET state = $7, attempts = $2, next_attempt_at = $8, lease_owner = NULL,
        lease_expires_at = NULL
    WHERE id = $1"""
DELIVERY = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
DELIVERIES_OF = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE request_id = $1 ORDER BY pos"
ATTEMPTS_OF = f"""
    SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts
    WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, attempt"""


# -- housekeeping ----------------------------------------------------------------------------------
def _tombstone(chosen: str) -> str:
    """The purge's one rule of what a tombstone loses, for the rows `chosen` selects (ids)."""
    return f"""
    WITH x AS ({chosen}),
    ev AS (DELETE FROM events USING x WHERE events.request_id = x.id),
    at AS (DELETE FROM attempts USING x WHERE attempts.request_id = x.id),
    dl AS (DELETE FROM deliveries USING x WHERE deliveries.request_id = x.id)
    UPDATE requests r SET message = '', metadata = '{{}}'::jsonb, progress = NULL, result = NULL,
        input_request = NULL, inputs = NULL, input_state = NULL, error = NULL, expired_at = $2,
        updated_at = $2
    FROM x WHERE r.id = x.id RETURNING r.id"""


# $1 cutoff (now - result_ttl), $2 now, $3 chunk
TOMBSTONE = _tombstone(
    f"SELECT id FROM requests WHERE {outlived_sql('$1::float8')} AND expired_at IS NULL "
    "LIMIT $3 FOR UPDATE SKIP LOCKED"
)
# $1 request id (locked and checked first: Store.forget), $2 now
FORGET = _tombstone("SELECT $1::text AS id")
# $1 cutoff (now - tombstone_ttl), $2 chunk
DROP_TOMBSTONES = """
    DELETE FROM requests WHERE id IN (
        SELECT id FROM requests WHERE expired_at IS NOT NULL AND expired_at <= $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING id"""
# $1 key cutoff, $2 chunk
DROP_OLD_KEYS = """
    DELETE FROM idempotency WHERE ctid IN (
        SELECT ctid FROM idempotency WHERE created_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1"""
PROBE_LOCK_TIMEOUT = f"SET LOCAL lock_timeout = {int(PROBE_LOCK_WAIT * 1000)}"
PROBE_WRITE = """
    INSERT INTO write_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at"""

# $1 name, $2 value, $3 now. Two statements in one READ COMMITTED transaction: an insert racing
# another waits for it and does nothing, and the SELECT after it (a new snapshot) sees the winner.
INSERT_SETTING = (
    "INSERT INTO settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING"
)
SETTING = "SELECT value FROM settings WHERE name = $1"

MIGRATIONS_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        name       text PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now())"""
APPLIED = "SELECT name FROM schema_migrations"
HAS_MIGRATIONS_TABLE = "SELECT to_regclass('schema_migrations') IS NOT NULL"
RECORD_MIGRATION = "INSERT INTO schema_migrations (name) VALUES ($1)"
LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock($1)"


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every packaged migration, in order (names start with a 4-digit number)."""
    folder = importlib.resources.files("errand.store").joinpath("migrations", "postgres")
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
