-- errand PostgreSQL schema, version 11: fair, prioritised, capped claiming and one turn per
-- session. fairness_key: who a request takes its turn as (default owner/user_id); sort_key:
-- submit time + (priority - 1) * aging seconds, so ordering by it within a key is priority with
-- aging; waiting_on: 'session' while an earlier request of its session is unfinished.

ALTER TABLE requests ADD COLUMN priority integer NOT NULL DEFAULT 3;
ALTER TABLE requests ADD COLUMN fairness_key text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN waiting_on text;
ALTER TABLE requests ADD COLUMN sort_key double precision NOT NULL DEFAULT 0;

UPDATE requests SET fairness_key = owner || '/' || user_id, sort_key = created_at
    WHERE status IN ('pending', 'processing');

-- claim: the head of one key's queue; unfinished rows only (running ones are few)
CREATE INDEX requests_fair ON requests (fairness_key, sort_key, pos) WHERE status IN ('pending', 'processing');
-- max_queued_per_user: a user's queued rows
CREATE INDEX requests_queued ON requests (owner, user_id) WHERE status = 'pending';
-- one turn per session: at most one unfinished, unheld request per session, enforced here
CREATE UNIQUE INDEX requests_session_turn ON requests (owner, user_id, session_id)
    WHERE session_id IS NOT NULL AND waiting_on IS NULL AND status IN ('pending', 'processing');
-- session queues: the next held request of a session, in submit order
CREATE INDEX requests_session_held ON requests (owner, user_id, session_id, created_at, pos)
    WHERE waiting_on IS NOT NULL;

-- One row per fairness key with unfinished work: the next key to serve has the smallest turn
-- (a virtual time that grows by 1/weight per claim of that key).
CREATE TABLE fair_keys (
    key       text COLLATE "C" PRIMARY KEY,
    next_turn double precision NOT NULL
);
CREATE INDEX fair_keys_turn ON fair_keys (next_turn, key);

INSERT INTO fair_keys (key, next_turn)
    SELECT DISTINCT fairness_key, 0 FROM requests WHERE status IN ('pending', 'processing');
