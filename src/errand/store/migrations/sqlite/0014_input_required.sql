-- errand SQLite schema, version 14: a request may pause for human input (status input_required).
-- input_request: the outstanding question as JSON {id, prompt, schema, expires_at, on_timeout,
-- asked_at} (NULL when none); inputs: the answers so far, a JSON list of {id, value} in ask
-- order; input_state: what the agent asked to keep for its resumption (an LLM's conversation);
-- input_expires_at: the question's deadline, for housekeeping's expiry scan.

ALTER TABLE requests ADD COLUMN input_request TEXT;
ALTER TABLE requests ADD COLUMN inputs TEXT;
ALTER TABLE requests ADD COLUMN input_state TEXT;
ALTER TABLE requests ADD COLUMN input_expires_at REAL;

-- expire_inputs: the waiting requests whose question has a deadline, soonest first
CREATE INDEX requests_input_expiry ON requests (input_expires_at)
    WHERE status = 'input_required' AND input_expires_at IS NOT NULL;

-- a request waiting for input still holds its session's turn
DROP INDEX requests_session_turn;
CREATE UNIQUE INDEX requests_session_turn ON requests (owner, user_id, session_id)
    WHERE session_id IS NOT NULL AND waiting_on IS NULL
        AND status IN ('pending', 'processing', 'input_required');

-- the queue gauges count input_required too (store/queue.py QUEUE_STATUSES)
INSERT INTO queue_counts (status, agent, n)
    SELECT status, agent, COUNT(*) FROM requests WHERE status = 'input_required' GROUP BY status, agent;

DROP TRIGGER requests_queue_insert;
DROP TRIGGER requests_queue_update;
DROP TRIGGER requests_queue_delete;

CREATE TRIGGER requests_queue_insert AFTER INSERT ON requests
    WHEN NEW.status IN ('pending', 'processing', 'input_required')
BEGIN
    INSERT INTO queue_counts (status, agent, n) VALUES (NEW.status, NEW.agent, 1);
END;

CREATE TRIGGER requests_queue_update AFTER UPDATE OF status, agent ON requests
    WHEN OLD.status IS NOT NEW.status OR OLD.agent IS NOT NEW.agent
BEGIN
    INSERT INTO queue_counts (status, agent, n)
        SELECT OLD.status, OLD.agent, -1 WHERE OLD.status IN ('pending', 'processing', 'input_required');
    INSERT INTO queue_counts (status, agent, n)
        SELECT NEW.status, NEW.agent, 1 WHERE NEW.status IN ('pending', 'processing', 'input_required');
END;

CREATE TRIGGER requests_queue_delete AFTER DELETE ON requests
    WHEN OLD.status IN ('pending', 'processing', 'input_required')
BEGIN
    INSERT INTO queue_counts (status, agent, n) VALUES (OLD.status, OLD.agent, -1);
END;
