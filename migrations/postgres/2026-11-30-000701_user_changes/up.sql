-- Which users changed: each instance's search index of the Users page
-- (src/users/search_index.rs) reads it to keep in step with the database, whoever made
-- the change (another instance, the outbox, the command line). Sequence numbers are
-- taken in the order changes are made, not committed: the reader waits for the
-- transactions that may still commit a missing number (see `ChangeLog`). Only the
-- columns the index holds count as a change. Statement-level triggers: a bulk insert
-- logs its rows in one statement, not one function call per row.
CREATE TABLE user_changes (
    seq BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL
);

-- The latest 100,000 changes are kept; an index further behind reads everyone again.
-- Rows another transaction is trimming are left to it rather than waited for.
CREATE FUNCTION enroll_trim_user_changes() RETURNS void
LANGUAGE sql AS $$
    DELETE FROM user_changes WHERE seq IN (
        SELECT seq FROM user_changes
        WHERE seq <= (SELECT max(seq) FROM user_changes) - 100000
        FOR UPDATE SKIP LOCKED
    );
$$;

-- Ids never change: an update is logged under the id it has.
CREATE FUNCTION enroll_users_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_changes (user_id) SELECT id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO user_changes (user_id) SELECT id FROM old_rows;
    ELSE
        INSERT INTO user_changes (user_id)
        SELECT new_rows.id FROM new_rows JOIN old_rows ON old_rows.id = new_rows.id
        WHERE (old_rows.first_name, old_rows.last_name, old_rows.email, old_rows.created_at,
               old_rows.enrolled_at, old_rows.deactivated_at, old_rows.provisioned_by)
            IS DISTINCT FROM
              (new_rows.first_name, new_rows.last_name, new_rows.email, new_rows.created_at,
               new_rows.enrolled_at, new_rows.deactivated_at, new_rows.provisioned_by);
    END IF;
    PERFORM enroll_trim_user_changes();
    RETURN NULL;
END;
$$;

CREATE FUNCTION enroll_invitations_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_changes (user_id) SELECT user_id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO user_changes (user_id) SELECT user_id FROM old_rows;
    ELSE
        INSERT INTO user_changes (user_id)
        SELECT old_rows.user_id FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id
        WHERE (old_rows.expires_at, old_rows.sent_at, old_rows.delivery_failed_at,
               old_rows.delivery_error, old_rows.superseded_at)
            IS DISTINCT FROM
              (new_rows.expires_at, new_rows.sent_at, new_rows.delivery_failed_at,
               new_rows.delivery_error, new_rows.superseded_at)
        UNION ALL
        SELECT new_rows.user_id FROM new_rows JOIN old_rows ON old_rows.id = new_rows.id
        WHERE new_rows.user_id <> old_rows.user_id;
    END IF;
    PERFORM enroll_trim_user_changes();
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_changes_user_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_users_changed();
CREATE TRIGGER user_changes_user_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_users_changed();
CREATE TRIGGER user_changes_user_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_users_changed();
CREATE TRIGGER user_changes_invitation_insert AFTER INSERT ON invitations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_invitations_changed();
CREATE TRIGGER user_changes_invitation_update AFTER UPDATE ON invitations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_invitations_changed();
CREATE TRIGGER user_changes_invitation_delete AFTER DELETE ON invitations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_invitations_changed();

-- One order on both engines, and in the index: byte order, as SQLite compares text.
ALTER TABLE users
    ALTER COLUMN name_key TYPE TEXT COLLATE "C",
    ALTER COLUMN email_key TYPE TEXT COLLATE "C";
