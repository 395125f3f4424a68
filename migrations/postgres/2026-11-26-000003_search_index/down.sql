DROP INDEX invitations_live_failed;
DROP INDEX invitations_live_expires_at;
DROP INDEX users_search_id;
ALTER TABLE users DROP COLUMN search_id;
DROP INDEX users_search_key_trigrams;
