DROP INDEX audit_events_subject_user_id;
ALTER TABLE audit_events DROP COLUMN subject_user_id;
DROP TABLE form_submissions;
ALTER TABLE invitation_settings DROP COLUMN reminder_days;
