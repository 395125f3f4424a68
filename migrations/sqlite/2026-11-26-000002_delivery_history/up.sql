-- Reminders: days before expiry to send one (NULL: none).
ALTER TABLE invitation_settings ADD COLUMN reminder_days INTEGER;

-- Idempotency keys of submitted invite forms: a second submission of the same form
-- (a double click, a second tab) finds its key taken and sends nothing.
CREATE TABLE form_submissions (
    submission_key TEXT PRIMARY KEY NOT NULL,
    account_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX form_submissions_created_at ON form_submissions (created_at);

-- The user an audit event is about, for the per-user history (NULL for other events,
-- and left in place when the user is removed).
ALTER TABLE audit_events ADD COLUMN subject_user_id TEXT;
CREATE INDEX audit_events_subject_user_id ON audit_events (subject_user_id, occurred_at);
