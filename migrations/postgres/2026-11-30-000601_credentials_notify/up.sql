-- A credential revoked (or its role, name or secret changed): every instance forgets the
-- access keys it has checked, on the channel that already makes it forget the sessions
-- it has checked, so that the next request signed with a revoked key is refused
-- everywhere. "Last used" changes nothing that is remembered: it does not notify.
CREATE TRIGGER credentials_notify AFTER DELETE OR UPDATE OF revoked_at, role, name, key_id, sealed_secret
    ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION enroll_notify_sessions();
