-- Machine credentials (API.md "Credentials"). A SCIM token is kept only as its SHA-256;
-- an access key's secret must be recoverable to check request signatures, so it is
-- kept sealed (AES-256-GCM) with a key derived from the session secret, which is not
-- in the database. Revoked rows stay, so that audit entries keep their name.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('scim', 'access-key')),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('administrator', 'helpdesk')),
    token_hash TEXT UNIQUE,
    key_id TEXT UNIQUE,
    sealed_secret TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    CHECK ((kind = 'scim' AND token_hash IS NOT NULL AND key_id IS NULL)
        OR (kind = 'access-key' AND key_id IS NOT NULL AND sealed_secret IS NOT NULL))
);
-- Names are how the audit log tells credentials apart: one live credential per name.
CREATE UNIQUE INDEX credentials_live_name ON credentials (lower(name)) WHERE revoked_at IS NULL;
