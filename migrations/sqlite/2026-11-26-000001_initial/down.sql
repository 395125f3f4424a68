DROP TABLE audit_events;
DROP TABLE outbound_emails;
DROP TABLE invitations;
DROP TABLE users;
DROP TABLE invitation_settings;
DROP TABLE setup_codes;
DROP TABLE sessions;
DROP TABLE accounts;
