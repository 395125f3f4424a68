-- Which instance holds an email's claim: each instance holds a PostgreSQL advisory lock
-- on its own id for as long as it runs, so the others can tell at once that a claimer
-- died (its connection, and with it the lock, is gone) and send what it had claimed.
ALTER TABLE outbound_emails ADD COLUMN claimed_by TEXT;

-- New email wakes the outbox of every instance (delivered when the transaction commits),
-- so that idle instances need not poll.
CREATE FUNCTION enroll_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('enroll_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbound_emails_notify AFTER INSERT ON outbound_emails
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_notify_outbox();

-- A session ended or changed, or an account's role or state changed: every instance
-- forgets the sessions it has checked (they are checked again on their next request).
CREATE FUNCTION enroll_notify_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('enroll_sessions', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_notify AFTER DELETE OR UPDATE OF state, account_id ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_notify_sessions();
CREATE TRIGGER accounts_notify AFTER DELETE OR UPDATE OF email, role, disabled_at ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_notify_sessions();
