-- errand SQLite schema, version 3: registered workers, so that a dead worker's requests are
-- taken over at once instead of after its lease (see store/processes.py).

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,     -- host name, for operators
    node          TEXT NOT NULL,     -- kernel boot id + pid namespace: pids compare only within one
    pid           INTEGER NOT NULL,
    started       TEXT,              -- the process start time (/proc/<pid>/stat field 22); NULL unknown
    registered_at REAL NOT NULL
) STRICT;

CREATE INDEX workers_by_node ON workers (node);

-- requeue_dead: the leases of given workers
CREATE INDEX requests_by_lease_owner ON requests (lease_owner) WHERE lease_owner IS NOT NULL;
