-- Provisioning from an identity provider (SCIM). A deactivated user stays, listed as
-- Deactivated, with every link dead; external_id is the identity provider's own id,
-- kept as given; provisioned_by is the name of the credential that created the user;
-- updated_at is the last change made to the user itself (SCIM's meta.lastModified).
ALTER TABLE users ADD COLUMN deactivated_at TIMESTAMP;
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN provisioned_by TEXT;
ALTER TABLE users ADD COLUMN updated_at TIMESTAMP;
CREATE INDEX users_external_id ON users (external_id);
