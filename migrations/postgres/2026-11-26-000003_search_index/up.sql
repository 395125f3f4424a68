-- Substring search over names and addresses through a trigram index. pg_trgm ships
-- with PostgreSQL (contrib) and is a trusted extension: a database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_search_key_trigrams ON users USING gin (search_key gin_trgm_ops);

-- Kept on both engines so that one schema serves both (SQLite's search index uses it).
ALTER TABLE users ADD COLUMN search_id BIGINT;
CREATE UNIQUE INDEX users_search_id ON users (search_id);

-- The Users page's status filters.
CREATE INDEX invitations_live_expires_at ON invitations (expires_at) WHERE superseded_at IS NULL;
CREATE INDEX invitations_live_failed ON invitations (delivery_failed_at)
    WHERE superseded_at IS NULL AND delivery_failed_at IS NOT NULL;
