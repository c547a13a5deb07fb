-- Anchors of the audit chain: every AUDIT_ANCHOR_EVERY entries and at shutdown, the hash of
-- an entry with an HMAC under a key kept outside the database (AUDIT_ANCHOR_KEY_FILE).
-- Someone who can write the database can rewrite entries and recompute every hash after
-- them, but cannot make anchors that agree without the key. key_id is a fingerprint of the
-- key (several instances with different keys each anchor on their own). Append-only, like
-- the log.
CREATE TABLE audit_anchors (
    seq BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    every BIGINT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (seq, key_id)
);
CREATE TRIGGER audit_anchors_no_update BEFORE UPDATE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit_anchors is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER audit_anchors_no_delete BEFORE DELETE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit_anchors is append-only: DELETE is not allowed');
END;
