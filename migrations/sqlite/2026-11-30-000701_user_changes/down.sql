DROP TRIGGER user_changes_trim;
DROP TRIGGER user_changes_invitation_delete;
DROP TRIGGER user_changes_invitation_update;
DROP TRIGGER user_changes_invitation_insert;
DROP TRIGGER user_changes_user_delete;
DROP TRIGGER user_changes_user_update;
DROP TRIGGER user_changes_user_insert;
DROP TABLE user_changes;
