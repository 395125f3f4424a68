DROP TABLE user_tags;
DROP INDEX users_client_request_token;
DROP INDEX users_api_user_id;
ALTER TABLE users DROP COLUMN client_request_token;
ALTER TABLE users DROP COLUMN api_user_id;
