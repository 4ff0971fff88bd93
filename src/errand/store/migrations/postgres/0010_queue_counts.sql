-- Queue gauges (/metrics errand_queue_depth, errand_oldest_pending_seconds) without a COUNT over
-- the queue: every change of a request's status (or agent) appends a +1/-1 row to queue_counts
-- in the same transaction (row triggers, fired only when the status or agent changes), and
-- store.queue_stats folds the rows into one per (status, agent) before summing them, so a read
-- costs the changes since the last read, not the queue's size (bench/metrics_bench.py).
-- Append-only: concurrent writers never wait on a shared counter row (no hot row, no deadlock).
-- A new non-terminal status must be added to queue_count_change() and to store/queue.py.

-- MIN(created_at) of pending: one probe of this partial index.
CREATE INDEX requests_queue ON requests (status, created_at) WHERE status IN ('pending', 'processing');

CREATE TABLE queue_counts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status  text NOT NULL,
    agent   text,
    n       bigint NOT NULL
);

INSERT INTO queue_counts (status, agent, n)
    SELECT status, agent, COUNT(*) FROM requests
    WHERE status IN ('pending', 'processing') GROUP BY status, agent;

CREATE FUNCTION queue_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('pending', 'processing') THEN
        INSERT INTO queue_counts (status, agent, n) VALUES (OLD.status, OLD.agent, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('pending', 'processing') THEN
        INSERT INTO queue_counts (status, agent, n) VALUES (NEW.status, NEW.agent, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER requests_queue_insert AFTER INSERT ON requests
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'processing')) EXECUTE FUNCTION queue_count_change();
CREATE TRIGGER requests_queue_update AFTER UPDATE OF status, agent ON requests
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.agent IS DISTINCT FROM NEW.agent)
    EXECUTE FUNCTION queue_count_change();
CREATE TRIGGER requests_queue_delete AFTER DELETE ON requests
    FOR EACH ROW WHEN (OLD.status IN ('pending', 'processing')) EXECUTE FUNCTION queue_count_change();
