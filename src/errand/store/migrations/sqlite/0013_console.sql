-- The web console (issue 12): sign-in sessions shared by every process on this database.
-- A session row holds the SHA-256 of the cookie value, never the value itself.

CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    role       TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
) STRICT, WITHOUT ROWID;

-- housekeeping: expired sessions by expiry
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- The overview's counts (GET /v1/admin/overview) without a COUNT over the table, as queue_counts
-- does for the queue (0010): every change of a live request's status or agent, and its purge to
-- a tombstone, appends a +1/-1 row in the same transaction; the overview sums them, folding
-- them into one row per group when they grow (store/console_sql.py). user_id is kept only for
-- the waiting and running rows (the overview's "by user" is of the queue), so the groups stay
-- as few as agents x statuses + the users with queued work.
CREATE TABLE request_counts (
    id      INTEGER PRIMARY KEY,
    status  TEXT NOT NULL,
    agent   TEXT,
    user_id TEXT,
    n       INTEGER NOT NULL
) STRICT;

INSERT INTO request_counts (status, agent, user_id, n)
    SELECT status, agent, CASE WHEN status IN ('pending', 'processing') THEN user_id END, COUNT(*)
    FROM requests WHERE expired_at IS NULL GROUP BY 1, 2, 3;

CREATE TRIGGER request_counts_insert AFTER INSERT ON requests
    WHEN NEW.expired_at IS NULL
BEGIN
    INSERT INTO request_counts (status, agent, user_id, n) VALUES (NEW.status, NEW.agent,
        CASE WHEN NEW.status IN ('pending', 'processing') THEN NEW.user_id END, 1);
END;

CREATE TRIGGER request_counts_update AFTER UPDATE OF status, agent, expired_at ON requests
    WHEN OLD.status IS NOT NEW.status OR OLD.agent IS NOT NEW.agent OR OLD.expired_at IS NOT NEW.expired_at
BEGIN
    INSERT INTO request_counts (status, agent, user_id, n)
        SELECT OLD.status, OLD.agent, CASE WHEN OLD.status IN ('pending', 'processing') THEN OLD.user_id END, -1
        WHERE OLD.expired_at IS NULL;
    INSERT INTO request_counts (status, agent, user_id, n)
        SELECT NEW.status, NEW.agent, CASE WHEN NEW.status IN ('pending', 'processing') THEN NEW.user_id END, 1
        WHERE NEW.expired_at IS NULL;
END;

CREATE TRIGGER request_counts_delete AFTER DELETE ON requests
    WHEN OLD.expired_at IS NULL
BEGIN
    INSERT INTO request_counts (status, agent, user_id, n) VALUES (OLD.status, OLD.agent,
        CASE WHEN OLD.status IN ('pending', 'processing') THEN OLD.user_id END, -1);
END;

-- The last hour per agent (throughput, failure rate, p50/p95): a per-minute rollup written by
-- the finish itself (this trigger, in its transaction). A duration is counted in a bucket of
-- geometric bounds (0.01 s x 1.25^k, k = 0..63: a percentile is known within 25 %), so a read
-- of the last hour costs agents x 60 minutes x the buckets used, never the finished rows.
CREATE TABLE duration_buckets (
    bucket INTEGER PRIMARY KEY,
    upper  REAL NOT NULL
) STRICT;

INSERT INTO duration_buckets (bucket, upper)
    WITH RECURSIVE b (k, u) AS (SELECT 0, 0.01 UNION ALL SELECT k + 1, u * 1.25 FROM b WHERE k < 63)
    SELECT k, u FROM b;

CREATE TABLE agent_minutes (
    minute INTEGER NOT NULL,
    agent  TEXT NOT NULL,
    status TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (minute, agent, status, bucket)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER agent_minutes_finish AFTER UPDATE OF status ON requests
    WHEN NEW.status IN ('completed', 'failed') AND OLD.status IS NOT NEW.status
        AND NEW.completed_at IS NOT NULL
BEGIN
    INSERT INTO agent_minutes (minute, agent, status, bucket, n)
        SELECT CAST(NEW.completed_at / 60 AS INTEGER) * 60, COALESCE(NEW.agent, ''), NEW.status,
            (SELECT COUNT(*) FROM duration_buckets
             WHERE upper < NEW.completed_at - COALESCE(NEW.started_at, NEW.created_at)), 1
        WHERE true
        ON CONFLICT (minute, agent, status, bucket) DO UPDATE SET n = n + 1;
END;

-- The request list's filters (GET /v1/requests?status|agent|kind|user_id|since|until), each
-- newest first by keyset on (created_at, id), as requests_by_created is for the unfiltered list.
CREATE INDEX requests_by_status ON requests (status, created_at, id);
CREATE INDEX requests_by_agent ON requests (agent, created_at, id);
CREATE INDEX requests_by_kind ON requests (kind, created_at, id);
CREATE INDEX requests_by_user ON requests (user_id, created_at, id);

-- GET /v1/admin/deliveries?state=..., newest first; the overview's last-hour delivery health.
CREATE INDEX deliveries_by_state ON deliveries (state, created_at, id);
CREATE INDEX deliveries_by_created ON deliveries (created_at, id);
CREATE INDEX delivery_attempts_at ON delivery_attempts (at);
