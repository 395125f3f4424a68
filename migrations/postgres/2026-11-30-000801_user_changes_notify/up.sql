-- A change to the users the index holds tells every instance at once, so that a search
-- answered from an instance's index needs no look at the log while nothing changed
-- (src/users/search_index.rs). One notification per statement that logged anything;
-- PostgreSQL folds those of one transaction into one.
CREATE FUNCTION enroll_notify_users() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        PERFORM pg_notify('enroll_users', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_changes_notify AFTER INSERT ON user_changes
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_notify_users();
