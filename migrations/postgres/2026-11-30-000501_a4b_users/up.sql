-- The Alexa for Business API's UserId (the script's choice through CreateUser, else the
-- user's own id), and the ClientRequestToken that made the user (NULL for others).
ALTER TABLE users ADD COLUMN api_user_id TEXT;
ALTER TABLE users ADD COLUMN client_request_token TEXT;
UPDATE users SET api_user_id = id;
CREATE UNIQUE INDEX users_api_user_id ON users (api_user_id);
CREATE UNIQUE INDEX users_client_request_token ON users (client_request_token);

-- Tags per user (the API's TagResource), searchable on the Users page as tag:Key=Value.
CREATE TABLE user_tags (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (user_id, tag_key)
);
CREATE INDEX user_tags_key_value ON user_tags (tag_key, tag_value);
