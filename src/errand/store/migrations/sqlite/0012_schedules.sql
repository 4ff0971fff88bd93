-- errand SQLite schema, version 12: schedules. A firing is an ordinary request whose id is
-- `sched:<schedule id>:<fire time in ms>`: the primary key of requests makes each fire time
-- fire once, and `fire_schedule` advances next_fire_at in the same transaction.

CREATE TABLE schedules (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    source               TEXT NOT NULL,          -- 'api' | 'file' (a trigger's front matter)
    cron                 TEXT,                   -- a cron expression, or NULL with every_seconds
    every_seconds        REAL,
    timezone             TEXT NOT NULL,
    trigger_name         TEXT,                   -- target: a trigger and its data ...
    data                 TEXT NOT NULL,
    agent                TEXT,                   -- ... or an agent and a message
    message              TEXT,
    user_id              TEXT NOT NULL,
    overlap              TEXT NOT NULL,
    catch_up             TEXT NOT NULL,
    enabled              INTEGER NOT NULL,
    max_failures         INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_fire_at         REAL,
    last_fired_at        REAL,
    last_request_id      TEXT,
    counted_request_id   TEXT,            -- the last firing whose outcome was counted
    created_at           REAL NOT NULL,
    updated_at           REAL NOT NULL
) STRICT;

-- the scheduler's tick: enabled schedules by next fire time
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled = 1;

-- purge_expired, found by bench/backlog_bench.py: the rows still to tombstone (requests_finished
-- also holds every tombstone, so each chunk scanned past all earlier ones), and the tombstones to
-- drop (without an index each chunk read the whole table).
CREATE INDEX requests_outlived ON requests (completed_at) WHERE completed_at IS NOT NULL AND expired_at IS NULL;
CREATE INDEX requests_tombstones ON requests (expired_at) WHERE expired_at IS NOT NULL;
