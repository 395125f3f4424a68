CREATE OR REPLACE FUNCTION enroll_users_changed() RETURNS trigger
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

CREATE OR REPLACE FUNCTION enroll_invitations_changed() RETURNS trigger
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

DROP FUNCTION enroll_trim_user_changes_now_and_then(BIGINT);
