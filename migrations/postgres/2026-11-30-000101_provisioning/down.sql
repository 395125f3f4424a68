DROP INDEX users_external_id;
ALTER TABLE users DROP COLUMN updated_at;
ALTER TABLE users DROP COLUMN provisioned_by;
ALTER TABLE users DROP COLUMN external_id;
ALTER TABLE users DROP COLUMN deactivated_at;
