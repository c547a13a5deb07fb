-- Rotation policy: a maximum age for a grant's secret, and zero-downtime rotations (staged
-- credentials handed over through a reveal link, the old secret retired at a deadline).

-- Per-grant maximum secret age in days (NULL: the portal's SECRET_MAX_AGE_DAYS; 0: never),
-- and when the grant's current secret became its primary one (NULL: since the grant was
-- created).
ALTER TABLE grants ADD COLUMN secret_max_age_days BIGINT;
ALTER TABLE grants ADD COLUMN secret_issued_at BIGINT;

-- A reveal link may hand over staged credentials (a rotation's new pair) instead of the
-- app's primary ones: their consumer key; the secret is the grant's sealed one.
ALTER TABLE reveal_links ADD COLUMN staged_key TEXT;

-- One row per rotation. state: staging (the portal is asking the org for staged
-- credentials), staged (both pairs work; the contractor has a link to the new one),
-- completed (the staged pair was rotated in: the old one is refused), failed.
CREATE TABLE secret_rotations (
    id TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id),
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    staged_id TEXT,
    new_key TEXT,
    completed_at BIGINT,
    completed_by TEXT,
    error TEXT
);
CREATE INDEX secret_rotations_state ON secret_rotations (state, deadline_at);
CREATE INDEX secret_rotations_grant ON secret_rotations (grant_id, started_at);
CREATE UNIQUE INDEX secret_rotations_one_open ON secret_rotations (grant_id) WHERE state IN ('staging', 'staged');

-- One row per reminder mailed before a rotation's deadline (days_before: 3 or 1); the
-- primary key makes each go out once across runs and instances.
CREATE TABLE secret_rotation_reminders (
    rotation_id TEXT NOT NULL REFERENCES secret_rotations (id),
    days_before BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (rotation_id, days_before)
);
