-- errand PostgreSQL schema, version 12: schedules. A firing is an ordinary request whose id is
-- `sched:<schedule id>:<fire time in ms>`: the primary key of requests makes each fire time
-- fire once, and `fire_schedule` advances next_fire_at in the same transaction (the schedule
-- row locked FOR UPDATE SKIP LOCKED, so concurrent schedulers never wait on each other).

CREATE TABLE schedules (
    id                   text COLLATE "C" PRIMARY KEY,
    name                 text NOT NULL UNIQUE,
    source               text NOT NULL,
    cron                 text,
    every_seconds        double precision,
    timezone             text NOT NULL,
    trigger_name         text,
    data                 jsonb NOT NULL,
    agent                text,
    message              text,
    user_id              text NOT NULL,
    overlap              text NOT NULL,
    catch_up             text NOT NULL,
    enabled              boolean NOT NULL,
    max_failures         integer NOT NULL,
    consecutive_failures integer NOT NULL DEFAULT 0,
    next_fire_at         double precision,
    last_fired_at        double precision,
    last_request_id      text COLLATE "C",
    counted_request_id text COLLATE "C",            -- the last firing whose outcome was counted
    created_at           double precision NOT NULL,
    updated_at           double precision NOT NULL
);

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;

-- purge_expired, found by bench/backlog_bench.py: the rows still to tombstone (requests_finished
-- also holds every tombstone, so each chunk scanned past all earlier ones).
CREATE INDEX requests_outlived ON requests (completed_at) WHERE completed_at IS NOT NULL AND expired_at IS NULL;
