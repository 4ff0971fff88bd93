-- errand SQLite schema, version 1: requests (the queue), their events, idempotency keys and the
-- webhook outbox. JSON is stored as text. Times are epoch seconds (REAL) from the store's clock.

CREATE TABLE requests (
    id                TEXT PRIMARY KEY,
    owner             TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    agent             TEXT,
    message           TEXT NOT NULL,
    session_id        TEXT,
    metadata          TEXT NOT NULL,
    trigger_name      TEXT,
    webhook_url       TEXT,
    mode              TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    progress          TEXT,
    result            TEXT,
    error             TEXT,
    created_at        REAL NOT NULL,
    started_at        REAL,
    completed_at      REAL,
    run_at            REAL NOT NULL,
    estimated_seconds REAL,
    seq               INTEGER NOT NULL DEFAULT 0,
    expired_at        REAL,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    updated_at        REAL NOT NULL
) STRICT;

-- claim: runnable rows (pending, or processing without a lease) in run_at order
CREATE INDEX requests_runnable ON requests (run_at)
    WHERE lease_owner IS NULL AND status IN ('pending', 'processing');

-- requeue_expired: leased rows by lease expiry
CREATE INDEX requests_leased ON requests (lease_expires_at) WHERE lease_owner IS NOT NULL;

-- list: newest first per owner/user, and for admins across owners
CREATE INDEX requests_by_owner ON requests (owner, user_id, created_at, id);
CREATE INDEX requests_by_created ON requests (created_at, id);

-- duration_history and purge_expired only ever look at finished rows
CREATE INDEX requests_durations ON requests (agent, completed_at) WHERE status = 'completed';
CREATE INDEX requests_finished ON requests (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE events (
    request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    at         REAL NOT NULL,
    PRIMARY KEY (request_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    request_id  TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    created_at  REAL NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE INDEX idempotency_request ON idempotency (request_id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    created_at       REAL NOT NULL
) STRICT;

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_request ON deliveries (request_id, created_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          REAL NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
) STRICT, WITHOUT ROWID;
