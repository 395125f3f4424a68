-- Which users changed: each instance's search index of the Users page
-- (src/users/search_index.rs) reads it to keep in step with the database, whoever made
-- the change (another instance, the outbox, the command line). Sequence numbers are
-- taken in the order changes are made, not committed: the reader waits for the
-- transactions that may still commit a missing number (see `ChangeLog`). Only the
-- columns the index holds count as a change.
CREATE TABLE user_changes (
    seq BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL
);

CREATE FUNCTION enroll_note_user_change(changed TEXT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    noted BIGINT;
BEGIN
    INSERT INTO user_changes (user_id) VALUES (changed) RETURNING seq INTO noted;
    -- The latest 100,000 changes are kept; an index further behind reads everyone again.
    IF noted % 1024 = 0 THEN
        DELETE FROM user_changes WHERE seq <= noted - 100000;
    END IF;
END;
$$;

CREATE FUNCTION enroll_user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM enroll_note_user_change(NEW.id);
    ELSE
        PERFORM enroll_note_user_change(OLD.id);
        IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
            PERFORM enroll_note_user_change(NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION enroll_invitation_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM enroll_note_user_change(NEW.user_id);
    ELSE
        PERFORM enroll_note_user_change(OLD.user_id);
        IF TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id THEN
            PERFORM enroll_note_user_change(NEW.user_id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_changes_user
    AFTER INSERT OR DELETE
        OR UPDATE OF id, first_name, last_name, email, created_at, enrolled_at, deactivated_at
    ON users
    FOR EACH ROW EXECUTE FUNCTION enroll_user_changed();
CREATE TRIGGER user_changes_invitation
    AFTER INSERT OR DELETE
        OR UPDATE OF user_id, expires_at, sent_at, delivery_failed_at, superseded_at
    ON invitations
    FOR EACH ROW EXECUTE FUNCTION enroll_invitation_changed();

-- One order on both engines, and in the index: byte order, as SQLite compares text.
ALTER TABLE users
    ALTER COLUMN name_key TYPE TEXT COLLATE "C",
    ALTER COLUMN email_key TYPE TEXT COLLATE "C";
