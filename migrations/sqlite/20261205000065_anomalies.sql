-- Anomaly rules (issue 18): what the rules need from the ApiTotalUsage files, per user and
-- hour (a window), kept beside usage_hours and replaced or added to the same way: a
-- re-delivered daily file replaces its period's rows, a late hourly file adds to its hour,
-- and an hour with an hourly file is judged from it, never also from the day's file (the
-- *_effective views, as usage_effective does for the budgets).
CREATE TABLE usage_windows (
    log_interval TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    user_key TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    -- Every call the files list (counted against the org's limit or not).
    calls BIGINT NOT NULL,
    -- Calls answered 4xx (STATUS_CODE 400 to 499).
    client_errors BIGINT NOT NULL,
    PRIMARY KEY (log_interval, period_start, user_key, hour_start)
);
CREATE INDEX usage_windows_user ON usage_windows (user_key, hour_start);

-- The distinct values of a window: kind 'entity' (ENTITY_NAME), 'ip' (CLIENT_IP) or 'app'
-- (CONNECTED_APP_ID), with the calls that carried each and the latest such call.
CREATE TABLE usage_window_values (
    log_interval TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    user_key TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    calls BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (log_interval, period_start, user_key, hour_start, kind, value)
);
CREATE INDEX usage_window_values_user ON usage_window_values (user_key, hour_start);

CREATE VIEW usage_windows_effective AS
SELECT user_key, hour_start, calls, client_errors FROM usage_windows WHERE log_interval = 'Hourly'
UNION ALL
SELECT d.user_key, d.hour_start, d.calls, d.client_errors FROM usage_windows d
WHERE d.log_interval = 'Daily' AND NOT EXISTS (
    SELECT 1 FROM usage_periods p WHERE p.log_interval = 'Hourly' AND p.period_start = d.hour_start
);

CREATE VIEW usage_window_values_effective AS
SELECT user_key, hour_start, kind, value, calls, last_at FROM usage_window_values WHERE log_interval = 'Hourly'
UNION ALL
SELECT d.user_key, d.hour_start, d.kind, d.value, d.calls, d.last_at FROM usage_window_values d
WHERE d.log_interval = 'Daily' AND NOT EXISTS (
    SELECT 1 FROM usage_periods p WHERE p.log_interval = 'Hourly' AND p.period_start = d.hour_start
);

-- Each anomaly once per grant, kind and window (the start of its hour): the key makes a
-- second raise (another instance, another run, the same file read twice) a no-op.
-- details: the observed figures (JSON), action: 'alert' or 'freeze'.
CREATE TABLE usage_anomalies (
    grant_id TEXT NOT NULL REFERENCES grants (id),
    kind TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    details TEXT NOT NULL,
    action TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, kind, window_start)
);
CREATE INDEX usage_anomalies_raised ON usage_anomalies (raised_at);

-- A grant's own anomaly action ('alert' or 'freeze'); NULL: the ANOMALY_ACTION setting.
ALTER TABLE grants ADD COLUMN anomaly_action TEXT;
