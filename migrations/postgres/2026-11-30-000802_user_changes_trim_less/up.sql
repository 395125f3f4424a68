-- The log was trimmed after every statement that touched users or invitations: a look
-- for old rows in each of the outbox's delivery updates. Trimmed now when the statement's
-- numbers cross a multiple of 1,024, as on SQLite; the log still keeps the latest 100,000
-- changes (and a little more).
CREATE OR REPLACE FUNCTION enroll_users_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    logged BIGINT;
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
    GET DIAGNOSTICS logged = ROW_COUNT;
    PERFORM enroll_trim_user_changes_now_and_then(logged);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION enroll_invitations_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    logged BIGINT;
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
    GET DIAGNOSTICS logged = ROW_COUNT;
    PERFORM enroll_trim_user_changes_now_and_then(logged);
    RETURN NULL;
END;
$$;

-- Trims when the numbers this statement took (the last `logged` of the sequence, in this
-- session) cross a multiple of 1,024: one statement in about 1,024 changes.
CREATE FUNCTION enroll_trim_user_changes_now_and_then(logged BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    last_taken BIGINT;
BEGIN
    IF logged > 0 THEN
        last_taken := currval(pg_get_serial_sequence('user_changes', 'seq'));
        IF last_taken / 1024 <> (last_taken - logged) / 1024 THEN
            PERFORM enroll_trim_user_changes();
        END IF;
    END IF;
END;
$$;
