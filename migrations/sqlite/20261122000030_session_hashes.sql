-- Sessions are keyed by the SHA-256 (hex) of their id, never the id itself: a copy of the
-- database holds no usable session. created_at (Unix seconds) is when the session began
-- (a sign-in), for the absolute lifetime (SESSION_MAX_HOURS). Rows from before were keyed
-- by the id itself and cannot be found by hash: they are removed, and everyone signs in
-- once more.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
