-- errand SQLite schema, version 4: settings, the values every process on this database shares
-- (the generated webhook signing secret). Written once by insert-if-absent, never purged.

CREATE TABLE IF NOT EXISTS settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
