-- Which instance holds an email's claim: each instance holds a lock on a file of its own
-- beside the database for as long as it runs, so another can tell that a claimer died
-- and send what it had claimed.
ALTER TABLE outbound_emails ADD COLUMN claimed_by TEXT;
