-- Issue 20: the audit log streamed to SIEM sinks (syslog, Splunk HEC, a signed webhook).
-- One row per sink (named `syslog`, `hec` or `webhook`), made when the portal first streams
-- to it: the last entry the sink acknowledged (delivery is at least once, in seq order,
-- resumed from here after a restart or an outage; it only moves forward), the lease of the
-- instance streaming to it (one at a time however many instances share the database), the
-- backoff after failures, and what the audit page and the metrics show. Never a secret:
-- errors are written without tokens or keys.
CREATE TABLE audit_stream_cursors (
    sink TEXT PRIMARY KEY NOT NULL,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    -- Failures since the last success (the backoff doubles with each), and in all.
    failures BIGINT NOT NULL DEFAULT 0,
    failures_total BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at BIGINT,
    last_success_at BIGINT
);
