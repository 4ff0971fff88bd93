-- Queue gauges (/metrics errand_queue_depth, errand_oldest_pending_seconds) without a COUNT over
-- the queue: every change of a request's status (or agent) appends a +1/-1 row to queue_counts
-- in the same transaction (triggers), and store.queue_stats folds the rows into one per
-- (status, agent) before summing them, so a read costs the changes since the last read, not
-- the queue's size (bench/metrics_bench.py). Append-only: no row is a hot spot for writers.
-- A new non-terminal status must be added to these WHEN clauses and to store/queue.py.

-- MIN(created_at) of pending: one probe of this partial index.
CREATE INDEX requests_queue ON requests (status, created_at) WHERE status IN ('pending', 'processing');

CREATE TABLE queue_counts (
    id      INTEGER PRIMARY KEY,
    status  TEXT NOT NULL,
    agent   TEXT,
    n       INTEGER NOT NULL
) STRICT;

INSERT INTO queue_counts (status, agent, n)
    SELECT status, agent, COUNT(*) FROM requests
    WHERE status IN ('pending', 'processing') GROUP BY status, agent;

CREATE TRIGGER requests_queue_insert AFTER INSERT ON requests
    WHEN NEW.status IN ('pending', 'processing')
BEGIN
    INSERT INTO queue_counts (status, agent, n) VALUES (NEW.status, NEW.agent, 1);
END;

CREATE TRIGGER requests_queue_update AFTER UPDATE OF status, agent ON requests
    WHEN OLD.status IS NOT NEW.status OR OLD.agent IS NOT NEW.agent
BEGIN
    INSERT INTO queue_counts (status, agent, n)
        SELECT OLD.status, OLD.agent, -1 WHERE OLD.status IN ('pending', 'processing');
    INSERT INTO queue_counts (status, agent, n)
        SELECT NEW.status, NEW.agent, 1 WHERE NEW.status IN ('pending', 'processing');
END;

CREATE TRIGGER requests_queue_delete AFTER DELETE ON requests
    WHEN OLD.status IN ('pending', 'processing')
BEGIN
    INSERT INTO queue_counts (status, agent, n) VALUES (OLD.status, OLD.agent, -1);
END;
