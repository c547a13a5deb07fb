-- Outboxes that recover from crashes and refusals. A sender claims a message until
-- claimed_until; a claim that ran out (the sender died mid-send) is taken up again. Mail is
-- tried at most a capped number of times, each after next_attempt_at (backoff), oldest due
-- first; a recipient the server refuses for good fails at once.
ALTER TABLE mail_outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN claimed_until BIGINT;
CREATE INDEX mail_outbox_due ON mail_outbox (delivery, next_attempt_at);
ALTER TABLE webhook_outbox ADD COLUMN claimed_until BIGINT;
