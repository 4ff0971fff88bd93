-- The row `/ready` writes to prove the database takes writes now (not read-only, not out of
-- disk, not locked): one row, rewritten by each probe.

CREATE TABLE write_probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  DOUBLE PRECISION NOT NULL
);
