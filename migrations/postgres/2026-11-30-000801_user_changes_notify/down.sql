DROP TRIGGER user_changes_notify ON user_changes;
DROP FUNCTION enroll_notify_users();
