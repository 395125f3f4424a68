-- Timestamps are UTC, stored by diesel as ISO-8601 text; ids are UUIDs as text.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('administrator', 'helpdesk')),
    created_at TIMESTAMP NOT NULL,
    disabled_at TIMESTAMP
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    idle_expires_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_account_id ON sessions (account_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE setup_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE invitation_settings (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    organization_name TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    sender_address TEXT NOT NULL,
    public_url TEXT NOT NULL,
    validity_days INTEGER NOT NULL CHECK (validity_days BETWEEN 1 AND 30),
    custom_message TEXT NOT NULL,
    after_join_url TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    -- lower-cased address: the case-insensitive identity
    email_key TEXT NOT NULL UNIQUE,
    -- lower-cased "last first", the name sort order
    name_key TEXT NOT NULL,
    -- lower-cased "first last email", for substring search
    search_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    invited_by TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    enrolled_at TIMESTAMP
);
CREATE INDEX users_name_key ON users (name_key, id);
CREATE INDEX users_created_at ON users (created_at, id);
CREATE INDEX users_enrolled_at ON users (enrolled_at);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    superseded_at TIMESTAMP,
    -- delivery outcome of the invitation email, recorded by the outbox worker
    sent_at TIMESTAMP,
    delivery_failed_at TIMESTAMP,
    delivery_error TEXT
);
-- A user's newest invitation is the only live one.
CREATE UNIQUE INDEX invitations_live_per_user ON invitations (user_id) WHERE superseded_at IS NULL;
CREATE INDEX invitations_user_id ON invitations (user_id);

CREATE TABLE outbound_emails (
    id TEXT PRIMARY KEY NOT NULL,
    invitation_id TEXT REFERENCES invitations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    sender_address TEXT NOT NULL,
    reply_to TEXT,
    recipient TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- bodies hold the enrollment link: erased once the email is sent or has failed
    body_text TEXT,
    body_html TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claim_token TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    failed_at TIMESTAMP
);
CREATE INDEX outbound_emails_due ON outbound_emails (status, next_attempt_at);
CREATE INDEX outbound_emails_invitation_id ON outbound_emails (invitation_id);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    actor_id TEXT,
    actor_email TEXT,
    action TEXT NOT NULL,
    subject_email TEXT,
    detail TEXT NOT NULL,
    client_ip TEXT
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, id);
