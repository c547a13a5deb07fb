-- Access reviews (issue 18): review campaigns, one item per grant under review with the
-- reviewer's decision (keep, narrow, revoke, or the campaign's default at the due date),
-- and the objects each integration user touched per day (ENTITY_NAME of ApiTotalUsage).

-- A campaign: which grants (all, an access package's, or those of one object), when it is
-- due (due_at: the end of the due date, ms), who reviews (JSON array of usernames; empty:
-- any approver), what an unanswered item becomes (keep or revoke). state: open, closed.
CREATE TABLE review_campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    selection_kind TEXT NOT NULL,
    selection_value TEXT,
    due_date TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    reviewers TEXT NOT NULL,
    default_decision TEXT NOT NULL,
    state TEXT NOT NULL,
    started_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX review_campaigns_open ON review_campaigns (state, due_at);

-- One item per grant in a campaign. decision: keep, narrow, revoke (NULL: unanswered);
-- decided_by: the reviewer, or 'default' when the due date decided. A narrowing keeps the
-- approved narrower scope (JSON) and how far it got: pending (to be applied and proven;
-- the job carries it on after a crash), done, failed (narrow_error says why).
CREATE TABLE review_items (
    campaign_id TEXT NOT NULL REFERENCES review_campaigns (id),
    grant_id TEXT NOT NULL REFERENCES grants (id),
    decision TEXT,
    decided_by TEXT,
    comment TEXT,
    decided_at BIGINT,
    narrow_scope TEXT,
    narrow_state TEXT,
    narrow_error TEXT,
    narrow_proof TEXT,
    narrowed_at BIGINT,
    PRIMARY KEY (campaign_id, grant_id)
);
CREATE INDEX review_items_narrowing ON review_items (narrow_state);

-- Calls per integration user, UTC day and object (ENTITY_NAME), from each usage file; kept
-- per file period like usage_hours (a re-delivered daily file replaces its rows).
CREATE TABLE usage_entities (
    log_interval TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    user_key TEXT NOT NULL,
    day_start BIGINT NOT NULL,
    entity TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (log_interval, period_start, user_key, day_start, entity)
);
CREATE INDEX usage_entities_user ON usage_entities (user_key, day_start);
