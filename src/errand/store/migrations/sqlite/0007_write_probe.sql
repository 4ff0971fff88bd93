-- The row `/ready` writes to prove the database takes writes now (the lock can be had, the
-- disk has room, the file is still the one errand opened): one row, rewritten by each probe.

CREATE TABLE write_probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  REAL NOT NULL
);
