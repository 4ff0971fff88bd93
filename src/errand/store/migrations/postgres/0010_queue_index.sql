-- Queue gauges (/metrics errand_queue_depth, errand_oldest_pending_seconds): the non-terminal
-- rows only, so a scrape reads an index the size of the queue, never the table of finished
-- requests. (status, created_at) first: MIN(created_at) of pending is one index probe; agent
-- last makes the per-agent counts an index-only scan. A new non-terminal status must be added
-- to this predicate and to store/queue.py's QUEUE_STATUSES.
CREATE INDEX requests_queue ON requests (status, created_at, agent)
    WHERE status IN ('pending', 'processing');
