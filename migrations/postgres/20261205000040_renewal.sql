-- Renewal: the reminders sent before a grant's end date, and the contractors' requests for
-- more time with the approvers' decisions on them.

-- One row per reminder sent: a grant, the end date it was about and the threshold (14, 3 or
-- 1 days before). Inserted in the transaction that queues the mail, so the primary key is
-- what makes each reminder go out once, across restarts and instances.
CREATE TABLE renewal_reminders (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    end_date TEXT NOT NULL,
    days_before BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, end_date, days_before)
);

-- A contractor's request for a later end date. state: pending, approved (waiting for the
-- org to take the new date: applied_at NULL), refused. At most one pending per grant.
CREATE TABLE extension_requests (
    id TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id),
    request_id TEXT NOT NULL REFERENCES access_requests (id),
    state TEXT NOT NULL,
    current_end_date TEXT NOT NULL,
    new_end_date TEXT NOT NULL,
    reason TEXT NOT NULL,
    approvals_required BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    applied_at BIGINT,
    apply_error TEXT
);
CREATE INDEX extension_requests_state ON extension_requests (state, created_at);
CREATE INDEX extension_requests_grant ON extension_requests (grant_id, created_at);
CREATE UNIQUE INDEX extension_requests_one_pending ON extension_requests (grant_id) WHERE state = 'pending';

-- Each approver decides an extension once (approved or refused), with a reason.
CREATE TABLE extension_decisions (
    id TEXT PRIMARY KEY NOT NULL,
    extension_id TEXT NOT NULL REFERENCES extension_requests (id),
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL,
    UNIQUE (extension_id, approver)
);
