ALTER TABLE users
    ALTER COLUMN name_key TYPE TEXT COLLATE "default",
    ALTER COLUMN email_key TYPE TEXT COLLATE "default";
DROP TRIGGER user_changes_invitation_delete ON invitations;
DROP TRIGGER user_changes_invitation_update ON invitations;
DROP TRIGGER user_changes_invitation_insert ON invitations;
DROP TRIGGER user_changes_user_delete ON users;
DROP TRIGGER user_changes_user_update ON users;
DROP TRIGGER user_changes_user_insert ON users;
DROP FUNCTION enroll_invitations_changed();
DROP FUNCTION enroll_users_changed();
DROP FUNCTION enroll_trim_user_changes();
DROP TABLE user_changes;
