-- errand PostgreSQL schema, version 1: requests (the queue), their events, idempotency keys and
-- the webhook outbox. JSON is jsonb. Times are epoch seconds (double precision) from the store's
-- clock, never now(): tests drive time with a manual clock.

CREATE TABLE requests (
    id                text COLLATE "C" PRIMARY KEY,  -- byte order: ties sort as in Python
    owner             text NOT NULL,
    user_id           text NOT NULL,
    kind              text NOT NULL,
    agent             text,
    message           text NOT NULL,
    session_id        text,
    metadata          jsonb NOT NULL,
    trigger_name      text,
    webhook_url       text,
    mode              text NOT NULL,
    status            text NOT NULL,
    attempt           integer NOT NULL DEFAULT 0,
    failures          integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL,
    progress          jsonb,
    result            jsonb,
    error             jsonb,
    created_at        double precision NOT NULL,
    started_at        double precision,
    completed_at      double precision,
    run_at            double precision NOT NULL,
    estimated_seconds double precision,
    seq               integer NOT NULL DEFAULT 0,
    expired_at        double precision,
    lease_owner       text,
    lease_expires_at  double precision,
    updated_at        double precision NOT NULL,
    pos               bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order: breaks run_at ties
    CONSTRAINT requests_status_known
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled'))
);

-- claim: runnable rows (pending, or processing without a lease) in run_at order
CREATE INDEX requests_runnable ON requests (run_at, pos)
    WHERE lease_owner IS NULL AND status IN ('pending', 'processing');

-- requeue_expired: leased rows by lease expiry
CREATE INDEX requests_leased ON requests (lease_expires_at) WHERE lease_owner IS NOT NULL;

-- list: newest first per owner/user, and for admins across owners
CREATE INDEX requests_by_owner ON requests (owner, user_id, created_at DESC, id DESC);
CREATE INDEX requests_by_created ON requests (created_at DESC, id DESC);

-- duration_history and purge_expired only ever look at finished rows
CREATE INDEX requests_durations ON requests (agent, completed_at DESC) WHERE status = 'completed';
CREATE INDEX requests_finished ON requests (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX requests_tombstones ON requests (expired_at) WHERE expired_at IS NOT NULL;

CREATE TABLE events (
    request_id text COLLATE "C" NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    at         double precision NOT NULL,
    PRIMARY KEY (request_id, seq)
);

CREATE TABLE idempotency (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    request_id  text COLLATE "C" NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    created_at  double precision NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE INDEX idempotency_request ON idempotency (request_id);

CREATE TABLE deliveries (
    id               text COLLATE "C" PRIMARY KEY,
    request_id       text COLLATE "C" NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    url              text NOT NULL,
    body             jsonb NOT NULL,
    state            text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  double precision,
    lease_owner      text,
    lease_expires_at double precision,
    created_at       double precision NOT NULL,
    pos              bigint GENERATED ALWAYS AS IDENTITY  -- insertion order: breaks time ties
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at, pos) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_request ON deliveries (request_id, pos);

CREATE TABLE delivery_attempts (
    delivery_id text COLLATE "C" NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          double precision NOT NULL,
    status_code integer,
    error       text,
    duration_ms integer NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
