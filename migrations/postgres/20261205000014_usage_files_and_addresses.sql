-- Malformed rows of a usage file are skipped, not a reason to refuse the whole file; how
-- many were skipped is kept with the file and shown on the usage dashboard (issue 14).
ALTER TABLE usage_files ADD COLUMN rows_skipped BIGINT NOT NULL DEFAULT 0;

-- The addresses each integration user called from (the usage files' CLIENT_IP): an app's
-- trusted IP ranges do not restrict a client-credentials token, so calls from outside a
-- grant's approved ranges are detected here and the grant is suspended and frozen. calls
-- is indicative (a re-delivered daily file adds again); last_at is the latest call seen.
CREATE TABLE usage_client_ips (
    user_key TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    calls BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (user_key, client_ip)
);

-- Each address outside a grant's ranges suspends the grant once (lifting it is an
-- approver's decision; the same address does not suspend it again).
CREATE TABLE usage_ip_alerts (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    client_ip TEXT NOT NULL,
    last_at BIGINT NOT NULL,
    raised_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, client_ip)
);
