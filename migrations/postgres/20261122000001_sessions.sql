-- Sign-in sessions (tower-sessions records). data is the session's JSON map;
-- expires_at is a Unix timestamp in seconds.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
