-- The end of access (issue 17): a grant revoked by an approver or owner, or past its end
-- date, is torn down. When the end was asked for, why, by whom and how ('revoked' or
-- 'expired'); and when the teardown finished (the grant became revoked or expired).
-- All NULL while the grant's access has not begun to end.
ALTER TABLE grants ADD COLUMN end_requested_at BIGINT;
ALTER TABLE grants ADD COLUMN end_reason TEXT;
ALTER TABLE grants ADD COLUMN ended_by TEXT;
ALTER TABLE grants ADD COLUMN end_kind TEXT;
ALTER TABLE grants ADD COLUMN access_ended_at BIGINT;
