-- Issue 20: the audit log's text search and its background verification.
--
-- Text search: a full-text index of each entry's details (FTS5; rowid = the entry's seq),
-- kept by triggers, so an entry is indexed by the statement that writes it, in the same
-- transaction (rolled back with it). The index is not part of the entry: nothing in it is
-- hashed, and the chain does not change. Contentless: only the words are stored, the
-- details stay in audit_log. A word is a run of letters and digits (unicode61, case
-- folded, accents kept), as `audit::search` splits a query.
CREATE VIRTUAL TABLE audit_search USING fts5(
    words,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO audit_search (rowid, words) SELECT seq, details FROM audit_log;
CREATE TRIGGER audit_search_insert AFTER INSERT ON audit_log
BEGIN
    INSERT INTO audit_search (rowid, words) VALUES (new.seq, new.details);
END;
-- (audit_log refuses UPDATE and DELETE; these keep the index true if the refusal is
-- removed, as the tamper tests do.)
CREATE TRIGGER audit_search_delete AFTER DELETE ON audit_log
BEGIN
    DELETE FROM audit_search WHERE rowid = old.seq;
END;
CREATE TRIGGER audit_search_update AFTER UPDATE ON audit_log
BEGIN
    DELETE FROM audit_search WHERE rowid = old.seq;
    INSERT INTO audit_search (rowid, words) VALUES (new.seq, new.details);
END;

-- "Verify chain" over the whole log (or a range of more than 10,000 entries) runs in the
-- background: a row per run. `active` is 1 while it waits or runs (NULL after), and unique,
-- so there is one at a time however many portal instances share the database; the
-- instance running it holds a lease (renewed with each progress write) and keeps where it
-- is (`checked_through`, `expected_prev`), so another instance carries it on if it dies.
CREATE TABLE audit_verifications (
    id TEXT PRIMARY KEY NOT NULL,
    active BIGINT UNIQUE CHECK (active = 1),
    -- running, intact, broken, failed
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    -- The range asked for; NULL: the whole log.
    from_seq BIGINT,
    to_seq BIGINT,
    -- The last entry to check (for the whole log, the chain head when the run began), the
    -- head's hash then, and the largest seq then (beyond the head: written outside).
    through_seq BIGINT,
    head_hash TEXT,
    head_max_seq BIGINT,
    started_at BIGINT,
    finished_at BIGINT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    checked BIGINT NOT NULL DEFAULT 0,
    checked_through BIGINT NOT NULL DEFAULT 0,
    expected_prev TEXT,
    -- Entries a second, over the run so far.
    rate BIGINT NOT NULL DEFAULT 0,
    problems BIGINT NOT NULL DEFAULT 0,
    first_problem_seq BIGINT,
    first_problem TEXT,
    first_problem_detail TEXT,
    -- The finished result (what an inline verify answers), JSON.
    result TEXT,
    error TEXT
);
CREATE INDEX audit_verifications_requested ON audit_verifications (requested_at);
