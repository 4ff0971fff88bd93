"""Seed a migrated errand database with N requests by SQL, for bench/dashboard_bench.py.

A million submits through the API would take many minutes and measure the submit path; this
loads rows directly, in both dialects, in one INSERT ... SELECT over a number series, so the
count triggers of migration 0010/0013 fire for each row as for a submit. The mix: spread over
7 days ending now; 8 agents; 5,000 users; 80 % chat, 15 % trigger, 5 % schedule; history
completed (92 %), failed (5 %) or cancelled (3 %); the last hour also holds the queue (3 %
pending, 1 % processing under a lease). The last hour's finished rows are inserted running and
then finished by an UPDATE, so the rollup trigger writes their per-minute stats as a finish does.
5 % of finished requests had a webhook: one delivery each (90 % delivered, 5 % failed, 5 %
pending) with its attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

WEEK = 7 * 86400


@dataclass(frozen=True)
class Dialect:
    series: str  # numbers 1..{count} as column n
    num: str  # the row number of an id 'r<n>'
    json: str  # a JSON literal of a text expression

    def cast_json(self, expr: str) -> str:
        return self.json.format(expr)


SQLITE = Dialect(
    series="(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) SELECT n FROM s)",
    num="CAST(substr(id, 2) AS INTEGER)",
    json="{}",
)
POSTGRES = Dialect(series="generate_series(1, {count}) AS n", num="substr(id, 2)::int", json="({})::jsonb")


def statements(d: Dialect, rows: int, now: float) -> list[str]:
    """The seeding statements, in order."""
    step = WEEK / rows
    created = f"({now} - ({rows} - n) * {step})"
    recent = f"({created} >= {now - 3600})"
    final = "CASE WHEN n % 100 < 5 THEN 'failed' WHEN n % 100 < 8 THEN 'cancelled' ELSE 'completed' END"
    status = (
        f"CASE WHEN {recent} AND n % 100 < 3 THEN 'pending' "
        f"WHEN {recent} AND n % 100 < 4 THEN 'processing' "
        f"WHEN {recent} THEN 'processing' ELSE {final} END"
    )
    terminal = f"NOT {recent}"
    error = d.cast_json(
        f'CASE WHEN {terminal} AND n % 100 < 5 THEN \'{{"type":"E","message":"boom","retryable":false}}\' END'
    )
    insert = (
        "INSERT INTO requests (id, owner, user_id, kind, agent, message, metadata, webhook_url, mode, status, "
        "attempt, max_attempts, error, created_at, started_at, completed_at, run_at, updated_at, lease_owner, "
        "lease_expires_at) "
        f"SELECT 'r' || n, 'o', 'u' || (n % 5000), "
        "CASE WHEN n % 20 = 0 THEN 'schedule' WHEN n % 20 < 4 THEN 'trigger' ELSE 'chat' END, "
        f"'agent-' || (n % 8), 'm', {d.cast_json(chr(39) + '{}' + chr(39))}, "
        "CASE WHEN n % 20 = 7 THEN 'http://127.0.0.1:9/hook' END, 'async', "
        f"{status}, CASE WHEN {recent} AND n % 100 < 3 THEN 0 ELSE 1 END, 3, {error}, {created}, "
        f"CASE WHEN {recent} AND n % 100 < 3 THEN NULL ELSE {created} + 0.5 END, "
        f"CASE WHEN {terminal} THEN {created} + 0.5 + (n % 40) * 0.25 END, {created}, {created}, "
        f"CASE WHEN {recent} AND n % 100 >= 3 THEN 'bench-worker' END, "
        f"CASE WHEN {recent} AND n % 100 >= 3 THEN {now + 86400} END "
        f"FROM {d.series.replace('{count}', str(rows))}"
    )
    n = d.num
    finish = (
        "UPDATE requests SET "
        f"status = CASE WHEN {n} % 100 < 5 THEN 'failed' WHEN {n} % 100 < 8 THEN 'cancelled' ELSE 'completed' END, "
        f"completed_at = LEAST_(started_at + ({n} % 40) * 0.25, {now}), lease_owner = NULL, "
        "lease_expires_at = NULL "
        f"WHERE status = 'processing' AND lease_owner = 'bench-worker' AND {n} % 100 >= 4"
    ).replace("LEAST_", "MIN" if d is SQLITE else "LEAST")
    deliveries = (
        "INSERT INTO deliveries (id, request_id, url, body, state, attempts, next_attempt_at, created_at) "
        f"SELECT 'd' || substr(id, 2), id, webhook_url, {d.cast_json(chr(39) + '{}' + chr(39))}, "
        f"CASE WHEN {n} % 100 < 5 THEN 'failed' WHEN {n} % 100 < 10 THEN 'pending' ELSE 'delivered' END, "
        f"CASE WHEN {n} % 100 BETWEEN 5 AND 9 THEN 0 ELSE 1 END, "
        f"CASE WHEN {n} % 100 BETWEEN 5 AND 9 THEN {now + 86400} END, completed_at "
        "FROM requests WHERE webhook_url IS NOT NULL AND completed_at IS NOT NULL"
    )
    attempts = (
        "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms) "
        "SELECT id, 1, created_at + 0.2, CASE WHEN state = 'delivered' THEN 200 ELSE 500 END, NULL, 20 "
        "FROM deliveries WHERE state <> 'pending'"
    )
    return [insert, finish, deliveries, attempts]
