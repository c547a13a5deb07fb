-- The provisioning workflow: one row per step of a grant's run, so a run resumes after a
-- crash. A worker leases a step (lease_owner, lease_expires_at) before running it; an
-- expired lease means the worker died and the step may be taken over.
CREATE TABLE provisioning_steps (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    step TEXT NOT NULL,
    position BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    -- JSON: what the step found or made (Salesforce ids), for later steps and for undo.
    output TEXT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    next_attempt_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, step)
);
CREATE INDEX provisioning_steps_runnable ON provisioning_steps (state, next_attempt_at);

-- Salesforce API calls each grant's provisioning made (they count against the org's pool).
ALTER TABLE grants ADD COLUMN api_calls BIGINT NOT NULL DEFAULT 0;
-- Why the run stopped and needs an admin, in words an admin can act on.
ALTER TABLE grants ADD COLUMN attention TEXT;
