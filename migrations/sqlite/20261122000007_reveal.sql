-- Handing the credential over: one row per reveal link sent to a grant's contractor. Only
-- the link token's hash is kept, and only the hash of the one-time code. A link is `open`
-- until it is revealed (`revealing` while one request holds the claim), `locked` after too
-- many wrong codes, or `superseded` by a newer link. Expiry is `expires_at`, not a state,
-- so nothing has to run for a link to expire.
CREATE TABLE reveal_links (
    id TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id),
    token_hash TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    code_hash TEXT,
    code_expires_at BIGINT,
    codes_sent BIGINT NOT NULL DEFAULT 0,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    claim_until BIGINT,
    revealed_at BIGINT,
    revealed_ip TEXT,
    revealed_user_agent TEXT,
    disowned_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX reveal_links_grant ON reveal_links (grant_id, created_at);

-- Only for orgs whose credentials API returns no consumer secrets: the secret the portal
-- chose for the grant's app, sealed with AES-256-GCM (bound to the grant), kept until it is
-- revealed or no link can reveal it any more, then deleted.
CREATE TABLE sealed_secrets (
    grant_id TEXT PRIMARY KEY NOT NULL REFERENCES grants (id),
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
