ALTER TABLE outbound_emails DROP COLUMN claimed_by;
