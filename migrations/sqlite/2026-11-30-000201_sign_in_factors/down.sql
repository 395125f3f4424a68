DROP TABLE oidc_sign_ins;
DROP TABLE sign_in_policy;
DROP TABLE recovery_codes;
ALTER TABLE accounts DROP COLUMN totp_last_step;
ALTER TABLE accounts DROP COLUMN totp_secret;
