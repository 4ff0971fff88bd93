-- Every attempt of every request: which worker ran it, when, how it ended, and for an
-- exception its traceback (bounded, see store/attempt_log.py). Inserted by claim, closed in the
-- same statement or transaction as the write that ends the attempt (finish, retry_later,
-- request_cancel, requeue_expired, requeue_dead). outcome is 'running' until then.

CREATE TABLE attempts (
    request_id    text COLLATE "C" NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    worker_id     text NOT NULL,
    started_at    double precision NOT NULL,
    ended_at      double precision,
    outcome       text NOT NULL DEFAULT 'running',
    error         jsonb,  -- {type, message, retryable}, as requests.error
    traceback     text,
    PRIMARY KEY (request_id, attempt)
);
