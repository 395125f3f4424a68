-- Which users changed, in the order the changes were committed: each instance's search
-- index of the Users page (src/users/search_index.rs) reads it to keep in step with the
-- database, whoever made the change (another instance, the outbox, the command line).
-- Only the columns the index holds count as a change.
CREATE TABLE user_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL
);

CREATE TRIGGER user_changes_user_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_changes (user_id) VALUES (new.id);
END;
CREATE TRIGGER user_changes_user_update
    AFTER UPDATE OF id, first_name, last_name, email, created_at, enrolled_at, deactivated_at,
        provisioned_by
    ON users BEGIN
    INSERT INTO user_changes (user_id) VALUES (old.id);
    INSERT INTO user_changes (user_id) SELECT new.id WHERE new.id <> old.id;
END;
CREATE TRIGGER user_changes_user_delete AFTER DELETE ON users BEGIN
    INSERT INTO user_changes (user_id) VALUES (old.id);
END;

CREATE TRIGGER user_changes_invitation_insert AFTER INSERT ON invitations BEGIN
    INSERT INTO user_changes (user_id) VALUES (new.user_id);
END;
CREATE TRIGGER user_changes_invitation_update
    AFTER UPDATE OF user_id, expires_at, sent_at, delivery_failed_at, delivery_error,
        superseded_at
    ON invitations BEGIN
    INSERT INTO user_changes (user_id) VALUES (old.user_id);
    INSERT INTO user_changes (user_id) SELECT new.user_id WHERE new.user_id <> old.user_id;
END;
CREATE TRIGGER user_changes_invitation_delete AFTER DELETE ON invitations BEGIN
    INSERT INTO user_changes (user_id) VALUES (old.user_id);
END;

-- The latest 100,000 changes are kept; an index further behind reads everyone again.
CREATE TRIGGER user_changes_trim AFTER INSERT ON user_changes WHEN new.seq % 1024 = 0 BEGIN
    DELETE FROM user_changes WHERE seq <= new.seq - 100000;
END;
