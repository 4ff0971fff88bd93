-- errand PostgreSQL schema, version 3: registered workers. Each worker process holds a session
-- advisory lock (classid 1163021892, objid lock_key) on a dedicated connection for its lifetime:
-- when that session ends (the process died, its connection dropped) the lock is free, and other
-- workers take its requests over at once instead of after its lease.

CREATE TABLE workers (
    id            text COLLATE "C" PRIMARY KEY,
    host          text NOT NULL,              -- host name, for operators
    node          text NOT NULL,              -- kernel boot id + pid namespace (store/processes.py)
    pid           integer NOT NULL,
    started       text,                       -- the process start time; NULL when unknown
    lock_key      integer NOT NULL,           -- objid of its session advisory lock
    backend_pid   integer NOT NULL,           -- server pid of the session holding it, for operators
    registered_at double precision NOT NULL
);

CREATE SEQUENCE workers_lock_key AS integer MINVALUE 1 CYCLE;

-- requeue_dead: the leases of given workers
CREATE INDEX requests_by_lease_owner ON requests (lease_owner) WHERE lease_owner IS NOT NULL;
