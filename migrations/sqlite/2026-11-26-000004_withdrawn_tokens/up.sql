-- Tokens of removed users, so that their links say the invitation was withdrawn
-- rather than that they never existed. Only the hash is kept, as for live tokens.
CREATE TABLE withdrawn_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    withdrawn_at TIMESTAMP NOT NULL
);
