-- The web console (issue 12): sign-in sessions shared by every process on this database.
-- A session row holds the SHA-256 of the cookie value, never the value itself.

CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    role       TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
) STRICT, WITHOUT ROWID;

-- housekeeping: expired sessions by expiry
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
