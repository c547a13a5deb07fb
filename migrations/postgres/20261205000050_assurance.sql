-- Assurance: every re-proof of a set-up grant (drift detection), and per grant its drift
-- policy and the drift last alerted.

-- One row per re-proof: when, whether it passed, the proof's checks and the live state's
-- differences from what was approved (JSON arrays of {check, expected, observed, pass,
-- wider}), the drift's fingerprint (NULL: no drift), and the error when it could not run.
CREATE TABLE assurance_proofs (
    id TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id),
    proved_at BIGINT NOT NULL,
    passed BIGINT NOT NULL,
    checks TEXT NOT NULL,
    drift TEXT NOT NULL,
    fingerprint TEXT,
    action TEXT,
    error TEXT,
    calls BIGINT
);
CREATE INDEX assurance_proofs_grant ON assurance_proofs (grant_id, proved_at);

-- Per grant: its drift policy (alert, freeze, reapply; NULL: the portal's default) and the
-- fingerprint of the drift last raised (NULL: none, or it cleared), so one drift raises
-- grant.drift_detected once.
CREATE TABLE assurance_grants (
    grant_id TEXT PRIMARY KEY NOT NULL REFERENCES grants (id),
    policy TEXT,
    raised_fingerprint TEXT,
    raised_at BIGINT
);
