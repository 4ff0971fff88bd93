-- The web console (issue 12): sign-in sessions shared by every process on this database.
-- A session row holds the SHA-256 of the cookie value, never the value itself.

CREATE TABLE console_sessions (
    id_hash    text COLLATE "C" PRIMARY KEY,
    key_id     text NOT NULL,
    role       text NOT NULL,
    csrf_token text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

-- housekeeping: expired sessions by expiry
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
