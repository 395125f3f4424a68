-- Substring search over names and addresses through a trigram index (FTS5), kept in
-- step by triggers. It is keyed by search_id, a real column: the implicit rowid of a
-- table without an INTEGER PRIMARY KEY may change on VACUUM.
ALTER TABLE users ADD COLUMN search_id INTEGER;
UPDATE users SET search_id = rowid;
CREATE UNIQUE INDEX users_search_id ON users (search_id);

CREATE VIRTUAL TABLE users_search USING fts5(
    search_key,
    content = 'users',
    content_rowid = 'search_id',
    tokenize = 'trigram'
);
INSERT INTO users_search (users_search) VALUES ('rebuild');

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, search_key) VALUES (new.search_id, new.search_key);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, search_key)
    VALUES ('delete', old.search_id, old.search_key);
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF search_key, search_id ON users BEGIN
    INSERT INTO users_search (users_search, rowid, search_key)
    VALUES ('delete', old.search_id, old.search_key);
    INSERT INTO users_search (rowid, search_key) VALUES (new.search_id, new.search_key);
END;

-- The Users page's rarest status. (No index on expires_at: without range statistics
-- SQLite would prefer it over walking the name order, and sort thousands of rows.)
CREATE INDEX invitations_live_failed ON invitations (delivery_failed_at)
    WHERE superseded_at IS NULL AND delivery_failed_at IS NOT NULL;
