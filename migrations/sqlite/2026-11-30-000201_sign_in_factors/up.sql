-- Two-factor sign-in: the TOTP secret, sealed with a key kept outside the database
-- (derived from the session secret), and the last time step used, so that a code is
-- accepted once. Accounts made by single sign-on have an empty password hash.
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT;

-- Single-use recovery codes, stored as SHA-256 of the account id and the code.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_account_id ON recovery_codes (account_id);

-- One row: whether every password account must use a second factor.
CREATE TABLE sign_in_policy (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    require_two_factor INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT
);

-- Single sign-on attempts in progress: consumed once, so that a callback cannot be
-- replayed. The PKCE verifier is sealed like the TOTP secrets.
CREATE TABLE oidc_sign_ins (
    state_hash TEXT PRIMARY KEY NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX oidc_sign_ins_expires_at ON oidc_sign_ins (expires_at);
