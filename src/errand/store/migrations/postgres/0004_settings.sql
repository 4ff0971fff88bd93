-- errand PostgreSQL schema, version 4: settings, the values every process on this database
-- shares (the generated webhook signing secret). Written once by insert-if-absent, never purged.

CREATE TABLE IF NOT EXISTS settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at double precision NOT NULL
);
