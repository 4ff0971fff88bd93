-- Every attempt of every request: which worker ran it, when, how it ended, and for an
-- exception its traceback (bounded, see store/attempt_log.py). Inserted by claim, closed in the
-- same transaction as the write that ends the attempt (finish, retry_later, request_cancel,
-- requeue_expired, requeue_dead). outcome is 'running' until then.

CREATE TABLE attempts (
    request_id    TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    worker_id     TEXT NOT NULL,
    started_at    REAL NOT NULL,
    ended_at      REAL,
    outcome       TEXT NOT NULL DEFAULT 'running',
    error         TEXT,  -- JSON {type, message, retryable}, as requests.error
    traceback     TEXT,
    PRIMARY KEY (request_id, attempt)
) STRICT, WITHOUT ROWID;
