-- "I did not do this" takes a one-time code of its own, mailed for the report to the verified
-- contact address (only its keyed hash is kept), accepted on the newest link of the grant
-- and within a window after the reveal. Wrong codes and codes sent are counted per link.
ALTER TABLE reveal_links ADD COLUMN disown_code_hash TEXT;
ALTER TABLE reveal_links ADD COLUMN disown_code_expires_at BIGINT;
ALTER TABLE reveal_links ADD COLUMN disown_codes_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE reveal_links ADD COLUMN disown_attempts BIGINT NOT NULL DEFAULT 0;
