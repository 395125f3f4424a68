ALTER TABLE users
    ALTER COLUMN name_key TYPE TEXT COLLATE "default",
    ALTER COLUMN email_key TYPE TEXT COLLATE "default";
DROP TRIGGER user_changes_invitation ON invitations;
DROP TRIGGER user_changes_user ON users;
DROP FUNCTION enroll_invitation_changed();
DROP FUNCTION enroll_user_changed();
DROP FUNCTION enroll_note_user_change(TEXT);
DROP TABLE user_changes;
