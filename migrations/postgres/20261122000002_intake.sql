-- Contractor requests, decisions, grants, mail, roles, settings, the access catalog, rate
-- limits, and the hash-chained audit log. Times are Unix milliseconds; JSON is TEXT.

CREATE TABLE access_requests (
    id TEXT PRIMARY KEY NOT NULL,
    submission_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    company TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    justification TEXT NOT NULL,
    scope TEXT NOT NULL,
    calls_per_day BIGINT NOT NULL,
    ip_ranges TEXT NOT NULL,
    end_date TEXT NOT NULL,
    submitter_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    verification_code_hash TEXT,
    verification_token_hash TEXT UNIQUE,
    verification_expires_at BIGINT,
    verification_attempts BIGINT NOT NULL DEFAULT 0,
    verified_at BIGINT,
    status_token_hash TEXT UNIQUE,
    risky BOOLEAN NOT NULL DEFAULT FALSE,
    approvals_required BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX access_requests_state_created ON access_requests (state, created_at);
CREATE INDEX access_requests_company ON access_requests (company);

CREATE TABLE request_events (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES access_requests (id),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    visible_to_contractor BOOLEAN NOT NULL
);
CREATE INDEX request_events_request ON request_events (request_id, at);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES access_requests (id),
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    scope TEXT,
    budget TEXT,
    end_date TEXT,
    ip_ranges TEXT,
    at BIGINT NOT NULL,
    UNIQUE (request_id, approver)
);

CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL UNIQUE REFERENCES access_requests (id),
    state TEXT NOT NULL,
    company TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    scope TEXT NOT NULL,
    budget TEXT NOT NULL,
    end_date TEXT NOT NULL,
    ip_ranges TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX grants_state ON grants (state);

CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    delivery TEXT NOT NULL,
    sent_at BIGINT,
    error TEXT
);
CREATE INDEX mail_outbox_recipient ON mail_outbox (recipient, created_at);

-- People who signed in, with the roles they had then (for notifications and reviews).
CREATE TABLE portal_users (
    username TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    is_approver BOOLEAN NOT NULL,
    is_security_reviewer BOOLEAN NOT NULL,
    is_owner BOOLEAN NOT NULL,
    last_sign_in BIGINT NOT NULL
);

CREATE TABLE roles (
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (username, role)
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE access_catalog (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    scope TEXT NOT NULL,
    budget TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- The audit log is append-only: the database itself refuses changes and deletions.
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
