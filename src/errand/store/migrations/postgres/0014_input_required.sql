-- errand PostgreSQL schema, version 14: a request may pause for human input (status
-- input_required). input_request: the outstanding question {id, prompt, schema, expires_at,
-- on_timeout, asked_at} (NULL when none); inputs: the answers so far, a list of {id, value} in
-- ask order (a list: jsonb keeps no key order); input_state: what the agent asked to keep for its
-- resumption (an LLM's conversation); input_expires_at: the deadline, for the expiry scan.

ALTER TABLE requests DROP CONSTRAINT requests_status_known;
ALTER TABLE requests ADD CONSTRAINT requests_status_known
    CHECK (status IN ('pending', 'processing', 'input_required', 'completed', 'failed', 'cancelled'));

ALTER TABLE requests ADD COLUMN input_request jsonb;
ALTER TABLE requests ADD COLUMN inputs jsonb;
ALTER TABLE requests ADD COLUMN input_state jsonb;
ALTER TABLE requests ADD COLUMN input_expires_at double precision;

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

CREATE OR REPLACE FUNCTION queue_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('pending', 'processing', 'input_required') THEN
        INSERT INTO queue_counts (status, agent, n) VALUES (OLD.status, OLD.agent, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('pending', 'processing', 'input_required') THEN
        INSERT INTO queue_counts (status, agent, n) VALUES (NEW.status, NEW.agent, 1);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER requests_queue_insert ON requests;
DROP TRIGGER requests_queue_delete ON requests;
CREATE TRIGGER requests_queue_insert AFTER INSERT ON requests
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'processing', 'input_required'))
    EXECUTE FUNCTION queue_count_change();
CREATE TRIGGER requests_queue_delete AFTER DELETE ON requests
    FOR EACH ROW WHEN (OLD.status IN ('pending', 'processing', 'input_required'))
    EXECUTE FUNCTION queue_count_change();
