-- errand PostgreSQL schema, version 16: the fair claim as one server-side function, so a claim
-- is one statement (one round trip, its own transaction) instead of ~8 round trips under the
-- claim lock. This is the executable form of the plan documented in store/fairness.py (the
-- SQLite backend runs that Python plan); the store contract suite (tests/store/
-- contract_scheduling.py) is what proves the two agree. Change the plan in both places, and
-- here only through a new migration (CREATE OR REPLACE FUNCTION).
--
-- One call = up to p_rounds plans, all under the transaction-scoped claim lock (0x66616972,
-- "fair", fair_sql.CLAIM_LOCK), which serializes claimers: caps are read, then taken.
-- Each plan:
--   keys   the first `want` fairness keys by (next_turn, key)                 (fair_keys_turn)
--   quota  how many heads of each: the first `want` of the slots next_turn + n / weight
--   heads  that many claimable rows of each key, FOR UPDATE SKIP LOCKED        (requests_fair)
--   walk   the heads in slot order (turn, key); a key with no head is "empty"; a head a cap
--          keeps back "holds" its key for the rest of the plan; else it is chosen and its key's
--          turn becomes its next slot
--   turns  held and empty keys go behind every key of the plan (max turn + 1); empty keys
--          with nothing unfinished are dropped; fair_keys rows are locked in key order first
--   claim  the chosen rows leased, each with its `started` event, its attempt row, a NOTIFY
-- Another plan follows while rows are wanted and this one passed over held or empty keys.
-- Running counts come from requests_by_lease_owner (running rows are few: the workers' slots).
-- EXPLAIN ANALYZE at 500,000 pending (bench/README.md): every step is an index scan.

CREATE FUNCTION errand_fair_claim(
    p_worker text, p_limit integer, p_now double precision, p_expires double precision,
    p_rounds integer, p_max_running integer, p_max_per_user integer,
    p_agents text[], p_agent_caps integer[], p_weight_keys text[], p_weights double precision[]
) RETURNS SETOF requests LANGUAGE plpgsql
-- JIT off: the planner guesses thousands of heads per key (it cannot see LIMIT quota), so it
-- would JIT-compile the heads query on every call (~30 ms, and more at a large backlog) for
-- work that takes well under 1 ms through requests_fair.
SET jit = off
AS $$
DECLARE
    capped boolean := p_max_running IS NOT NULL OR p_max_per_user IS NOT NULL
        OR coalesce(cardinality(p_agents), 0) > 0;
    taken integer := 0;
    want integer;
    total integer;
    run_users text[];
    run_user_n integer[];
    run_agents text[];
    run_agent_n integer[];
    chosen text[];
    turn_keys text[];
    turn_vals double precision[];
    held text[];
    empty text[];
    top double precision;
    s record;
    i integer;
    cap integer;
    who text;
    got requests[];
BEGIN
    PERFORM pg_advisory_xact_lock(1717660018);
    FOR plan_no IN 1 .. greatest(p_rounds, 1) LOOP
        want := p_limit - taken;
        EXIT WHEN want <= 0;
        chosen := '{}'; turn_keys := '{}'; turn_vals := '{}'; held := '{}'; empty := '{}';
        top := NULL;
        IF capped THEN  -- what runs now, this call's earlier plans included
            SELECT count(*) INTO total FROM requests WHERE lease_owner IS NOT NULL;
            SELECT coalesce(array_agg(u), '{}'), coalesce(array_agg(n), '{}') INTO run_users, run_user_n
            FROM (SELECT owner || E'\n' || user_id AS u, count(*)::integer AS n FROM requests
                  WHERE lease_owner IS NOT NULL GROUP BY 1) x;
            SELECT coalesce(array_agg(agent), '{}'), coalesce(array_agg(n), '{}') INTO run_agents, run_agent_n
            FROM (SELECT agent, count(*)::integer AS n FROM requests
                  WHERE lease_owner IS NOT NULL AND agent IS NOT NULL GROUP BY 1) x;
        END IF;
        FOR s IN
            WITH k AS (
                SELECT f.key, f.next_turn AS t0,
                    1.0::double precision / greatest(coalesce(w.weight, 1.0), 1e-6) AS step
                FROM (SELECT key, next_turn FROM fair_keys ORDER BY next_turn, key LIMIT want) f
                LEFT JOIN unnest(p_weight_keys, p_weights) AS w(key, weight) ON w.key = f.key),
            q AS (
                SELECT key, t0, step, count(*)::integer AS quota FROM (
                    SELECT k.key, k.t0, k.step FROM k CROSS JOIN generate_series(0, want - 1) AS g(n)
                    ORDER BY k.t0 + g.n * k.step, k.key LIMIT want) x
                GROUP BY key, t0, step),
            h AS (
                SELECT q.key, q.t0, q.step, c.id, c.owner, c.user_id, c.agent,
                    row_number() OVER (PARTITION BY q.key ORDER BY c.sort_key, c.pos) - 1 AS n
                FROM q LEFT JOIN LATERAL (
                    SELECT r.id, r.owner, r.user_id, r.agent, r.sort_key, r.pos FROM requests r
                    WHERE r.fairness_key = q.key AND r.status IN ('pending', 'processing')
                        AND r.lease_owner IS NULL AND r.run_at <= p_now AND r.waiting_on IS NULL
                    ORDER BY r.sort_key, r.pos LIMIT q.quota
                    FOR UPDATE SKIP LOCKED) c ON true)
            SELECT h.key, h.id, h.owner, h.user_id, h.agent,
                h.t0 + h.n * h.step AS turn, h.t0 + (h.n + 1) * h.step AS next,
                max(h.t0) OVER () AS top
            FROM h ORDER BY turn, h.key
        LOOP
            top := s.top;
            EXIT WHEN cardinality(chosen) >= want;
            CONTINUE WHEN s.key = ANY(held);
            IF s.id IS NULL THEN  -- nothing claimable in this key now
                empty := empty || s.key;
                CONTINUE;
            END IF;
            IF capped THEN
                who := s.owner || E'\n' || s.user_id;
                cap := p_agent_caps[array_position(p_agents, s.agent)];
                IF (p_max_running IS NOT NULL AND total >= p_max_running)
                    OR (p_max_per_user IS NOT NULL
                        AND coalesce(run_user_n[array_position(run_users, who)], 0) >= p_max_per_user)
                    OR (cap IS NOT NULL
                        AND coalesce(run_agent_n[array_position(run_agents, s.agent)], 0) >= cap) THEN
                    held := held || s.key;
                    CONTINUE;
                END IF;
                total := total + 1;
                i := array_position(run_users, who);
                IF i IS NULL THEN
                    run_users := run_users || who; run_user_n := run_user_n || 1;
                ELSE
                    run_user_n[i] := run_user_n[i] + 1;
                END IF;
                IF s.agent IS NOT NULL THEN
                    i := array_position(run_agents, s.agent);
                    IF i IS NULL THEN
                        run_agents := run_agents || s.agent; run_agent_n := run_agent_n || 1;
                    ELSE
                        run_agent_n[i] := run_agent_n[i] + 1;
                    END IF;
                END IF;
            END IF;
            chosen := chosen || s.id;
            i := array_position(turn_keys, s.key);
            IF i IS NULL THEN
                turn_keys := turn_keys || s.key; turn_vals := turn_vals || s.next;
            ELSE
                turn_vals[i] := s.next;
            END IF;
        END LOOP;
        EXIT WHEN top IS NULL;  -- no fairness key at all
        PERFORM 1 FROM fair_keys WHERE key = ANY(turn_keys || held || empty) ORDER BY key FOR UPDATE;
        UPDATE fair_keys f SET next_turn = x.turn
            FROM unnest(turn_keys, turn_vals) AS x(key, turn) WHERE f.key = x.key;
        IF cardinality(held) + cardinality(empty) > 0 THEN
            DELETE FROM fair_keys f WHERE f.key = ANY(empty) AND NOT EXISTS (
                SELECT 1 FROM requests r WHERE r.fairness_key = f.key AND r.status IN ('pending', 'processing'));
            UPDATE fair_keys SET next_turn = (SELECT max(t) + 1 FROM unnest(turn_vals || top) AS t)
                WHERE key = ANY(held || empty);
        END IF;
        IF cardinality(chosen) > 0 THEN
            WITH c AS (
                UPDATE requests r SET status = 'processing', attempt = r.attempt + 1,
                    lease_owner = p_worker, lease_expires_at = p_expires,
                    started_at = COALESCE(r.started_at, p_now), seq = r.seq + 1, updated_at = p_now
                WHERE r.id = ANY(chosen) AND r.lease_owner IS NULL
                    AND r.status IN ('pending', 'processing') AND r.run_at <= p_now AND r.waiting_on IS NULL
                RETURNING r AS req),
            e AS (
                INSERT INTO events (request_id, seq, type, data, at)
                SELECT (c.req).id, (c.req).seq, 'started',
                    jsonb_build_object('status', (c.req).status, 'attempt', (c.req).attempt), p_now
                FROM c),
            a AS (
                INSERT INTO attempts (request_id, attempt, worker_id, started_at)
                SELECT (c.req).id, (c.req).attempt, p_worker, p_now FROM c)
            SELECT array_agg(c.req ORDER BY array_position(chosen, (c.req).id)) INTO got FROM c;
            PERFORM pg_notify('errand_change', g.id || ' ' || g.seq) FROM unnest(got) AS g;
            RETURN QUERY SELECT * FROM unnest(got);
            taken := taken + coalesce(cardinality(got), 0);
        END IF;
        EXIT WHEN cardinality(held) + cardinality(empty) = 0;
    END LOOP;
END
$$;
