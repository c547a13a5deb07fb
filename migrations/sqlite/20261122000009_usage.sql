-- Per-contractor API usage, read from the org's ApiTotalUsage event log files.
--
-- Each file the collector read is in usage_files. A period (a day, or an hour) is spoken
-- for by its newest file (usage_periods): a re-delivered file replaces the rows of the one
-- before it in usage_hours, in one transaction, so nothing is counted twice. An hour for
-- which an hourly file exists is counted from that file and never also from the day's
-- file (usage_effective). User ids are kept as their case-sensitive 15 characters, as the
-- files carry them. Times are Unix milliseconds (UTC).
CREATE TABLE usage_files (
    file_id TEXT PRIMARY KEY NOT NULL,
    log_interval TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    created_date BIGINT NOT NULL,
    -- read: its rows are in usage_hours (or were, until a newer file replaced them);
    -- superseded: a newer file of the same period had already been read.
    outcome TEXT NOT NULL,
    rows_read BIGINT NOT NULL,
    -- Rows whose time is outside the file's period (latent duplicates), not counted.
    rows_outside BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    read_at BIGINT NOT NULL
);
CREATE INDEX usage_files_created ON usage_files (created_date);

CREATE TABLE usage_periods (
    log_interval TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    file_id TEXT NOT NULL,
    created_date BIGINT NOT NULL,
    PRIMARY KEY (log_interval, period_start)
);

CREATE TABLE usage_hours (
    log_interval TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    user_key TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    counted BIGINT NOT NULL,
    PRIMARY KEY (log_interval, period_start, user_key, hour_start)
);
CREATE INDEX usage_hours_user ON usage_hours (user_key, hour_start);
CREATE INDEX usage_hours_hour ON usage_hours (hour_start);

-- The username each user id had in the newest file that named it (for "top consumers").
CREATE TABLE usage_users (
    user_key TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Calls per user and hour, each hour from exactly one file: the hourly one when the org
-- produced it, else the day's.
CREATE VIEW usage_effective AS
SELECT user_key, hour_start, calls, counted FROM usage_hours WHERE log_interval = 'Hourly'
UNION ALL
SELECT d.user_key, d.hour_start, d.calls, d.counted FROM usage_hours d
WHERE d.log_interval = 'Daily' AND NOT EXISTS (
    SELECT 1 FROM usage_periods p WHERE p.log_interval = 'Hourly' AND p.period_start = d.hour_start
);

-- The collector: one row. created_cursor is the newest CreatedDate of the files read so
-- far; the next run lists files created since (with an overlap, skipping files already
-- read). A lease keeps two instances from collecting at once.
CREATE TABLE usage_collector (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    created_cursor BIGINT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    last_run_at BIGINT,
    last_success_at BIGINT,
    last_error TEXT
);
INSERT INTO usage_collector (id) VALUES (1);

-- What the org said at each collector run: its rolling 24-hour API allocation
-- (/limits DailyApiRequests) and its Salesforce Integration user licences (UserLicense).
CREATE TABLE org_usage_snapshots (
    at BIGINT PRIMARY KEY NOT NULL,
    daily_api_max BIGINT,
    daily_api_remaining BIGINT,
    integration_licences_total BIGINT,
    integration_licences_used BIGINT
);

-- Budget alerts: at most one per grant, budget window and level. A day's window is the UTC
-- day; a 7-day budget alerts at most once in any 7 days.
CREATE TABLE usage_alerts (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    budget_window TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    level TEXT NOT NULL,
    calls BIGINT NOT NULL,
    limit_calls BIGINT NOT NULL,
    raised_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, budget_window, window_start, level)
);

-- Webhook deliveries, written in the transaction of the alert they carry and sent (signed)
-- by a sender task; retried with backoff until the receiver answers 2xx.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    delivery TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (delivery, next_attempt_at);

-- A grant over its hard budget with the freeze action is `suspended`: the state it had
-- (ready or active) is kept to return to, and frozen_at says when the integration user was
-- frozen in Salesforce (NULL while the freeze is still to be applied).
ALTER TABLE grants ADD COLUMN suspended_from TEXT;
ALTER TABLE grants ADD COLUMN frozen_at BIGINT;
