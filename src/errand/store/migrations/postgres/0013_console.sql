-- The web console (issue 12): sign-in sessions shared by every process on this database.
-- A session row holds the SHA-256 of the cookie value, never the value itself.

CREATE TABLE console_sessions (
    id_hash    text COLLATE "C" PRIMARY KEY,
    key_id     text NOT NULL,
    role       text NOT NULL,
    csrf_token text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

-- housekeeping: expired sessions by expiry
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- The overview's counts (GET /v1/admin/overview) without a COUNT over the table, as queue_counts
-- does for the queue (0010): every change of a live request's status or agent, and its purge to
-- a tombstone, appends a +1/-1 row in the same transaction (append-only: no hot row); the
-- overview sums them, folding them into one row per group when they grow (store/console_sql.py).
-- user_id is kept only for the waiting and running rows (the overview's "by user" is of the
-- queue), so the groups stay as few as agents x statuses + the users with queued work.
CREATE TABLE request_counts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status  text NOT NULL,
    agent   text,
    user_id text,
    n       bigint NOT NULL
);

INSERT INTO request_counts (status, agent, user_id, n)
    SELECT status, agent, CASE WHEN status IN ('pending', 'processing') THEN user_id END, COUNT(*)
    FROM requests WHERE expired_at IS NULL GROUP BY 1, 2, 3;

CREATE FUNCTION request_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.expired_at IS NULL THEN
        INSERT INTO request_counts (status, agent, user_id, n) VALUES (OLD.status, OLD.agent,
            CASE WHEN OLD.status IN ('pending', 'processing') THEN OLD.user_id END, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.expired_at IS NULL THEN
        INSERT INTO request_counts (status, agent, user_id, n) VALUES (NEW.status, NEW.agent,
            CASE WHEN NEW.status IN ('pending', 'processing') THEN NEW.user_id END, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER request_counts_insert AFTER INSERT ON requests
    FOR EACH ROW WHEN (NEW.expired_at IS NULL) EXECUTE FUNCTION request_count_change();
CREATE TRIGGER request_counts_update AFTER UPDATE OF status, agent, expired_at ON requests
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.agent IS DISTINCT FROM NEW.agent
        OR OLD.expired_at IS DISTINCT FROM NEW.expired_at)
    EXECUTE FUNCTION request_count_change();
CREATE TRIGGER request_counts_delete AFTER DELETE ON requests
    FOR EACH ROW WHEN (OLD.expired_at IS NULL) EXECUTE FUNCTION request_count_change();

-- The last hour per agent (throughput, failure rate, p50/p95): a per-minute rollup written by
-- the finish itself (this trigger, in its transaction). A duration is counted in a bucket of
-- geometric bounds (0.01 s x 1.25^k, k = 0..63: a percentile is known within 25 %), so a read
-- of the last hour costs agents x 60 minutes x the buckets used, never the finished rows.
-- Finishes of one agent in one minute share a row: concurrent finishing transactions wait on
-- it for the rest of their (short) transaction.
CREATE TABLE duration_buckets (
    bucket integer PRIMARY KEY,
    upper  double precision NOT NULL
);

INSERT INTO duration_buckets (bucket, upper)
    WITH RECURSIVE b (k, u) AS (
        SELECT 0, 0.01::double precision UNION ALL SELECT k + 1, u * 1.25 FROM b WHERE k < 63
    )
    SELECT k, u FROM b;

CREATE TABLE agent_minutes (
    minute bigint NOT NULL,
    agent  text COLLATE "C" NOT NULL,
    status text NOT NULL,
    bucket integer NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (minute, agent, status, bucket)
);

CREATE FUNCTION agent_minute_finish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agent_minutes (minute, agent, status, bucket, n)
        SELECT (floor(NEW.completed_at / 60) * 60)::bigint, COALESCE(NEW.agent, ''), NEW.status,
            (SELECT COUNT(*) FROM duration_buckets
             WHERE upper < NEW.completed_at - COALESCE(NEW.started_at, NEW.created_at)), 1
        ON CONFLICT (minute, agent, status, bucket) DO UPDATE SET n = agent_minutes.n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_minutes_finish AFTER UPDATE OF status ON requests
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed') AND OLD.status IS DISTINCT FROM NEW.status
        AND NEW.completed_at IS NOT NULL)
    EXECUTE FUNCTION agent_minute_finish();

-- The request list's filters (GET /v1/requests?status|agent|kind|user_id|since|until), each
-- newest first by keyset on (created_at, id), as requests_by_created is for the unfiltered list.
CREATE INDEX requests_by_status ON requests (status, created_at DESC, id DESC);
CREATE INDEX requests_by_agent ON requests (agent, created_at DESC, id DESC);
CREATE INDEX requests_by_kind ON requests (kind, created_at DESC, id DESC);
CREATE INDEX requests_by_user ON requests (user_id, created_at DESC, id DESC);

-- GET /v1/admin/deliveries?state=..., newest first; the overview's last-hour delivery health.
CREATE INDEX deliveries_by_state ON deliveries (state, created_at DESC, id DESC);
CREATE INDEX deliveries_by_created ON deliveries (created_at DESC, id DESC);
CREATE INDEX delivery_attempts_at ON delivery_attempts (at);
