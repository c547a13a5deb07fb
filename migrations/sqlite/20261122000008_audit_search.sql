-- The audit page's filters and paging. Entry times never go backwards (the head remembers
-- the last one), so a time range is a range of sequence numbers and every filter pages on
-- an index ordered by seq.
ALTER TABLE audit_head ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;
UPDATE audit_head SET last_at = COALESCE((SELECT MAX(at) FROM audit_log), 0) WHERE id = 1;
DROP INDEX audit_log_at;
CREATE INDEX audit_log_at ON audit_log (at, seq);
CREATE INDEX audit_log_outcome ON audit_log (outcome, seq);
CREATE INDEX audit_log_target_id ON audit_log (target_id, seq);
