DROP TRIGGER accounts_notify ON accounts;
DROP TRIGGER sessions_notify ON sessions;
DROP FUNCTION enroll_notify_sessions();
DROP TRIGGER outbound_emails_notify ON outbound_emails;
DROP FUNCTION enroll_notify_outbox();
ALTER TABLE outbound_emails DROP COLUMN claimed_by;
