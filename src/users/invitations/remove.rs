//! Removing users, and revoking the invitations a disabled account sent.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::*;

/// Which users to remove.
pub enum Removal {
    /// Chosen on the Users page.
    Selected(Vec<String>),
    /// Everyone who never joined and whose invitation expired before this time, as it
    /// stands once they are locked: someone resent to meanwhile stays.
    ExpiredBefore(NaiveDateTime),
}

/// Deletes users. Their invitations and unsent emails go with them (foreign keys
/// cascade), so their links stop working at once.
pub fn remove(
    conn: &mut DbConnection,
    change: &Change<'_>,
    which: Removal,
) -> Result<Vec<UserLabel>, Error> {
    write_transaction(conn, |conn| {
        let selected = match which {
            Removal::Selected(ids) => lock_users(conn, &ids)?,
            Removal::ExpiredBefore(cutoff) => {
                let candidates = expired_user_ids(conn, cutoff, None)?;
                let locked = lock_users(conn, &candidates)?;
                let ids: Vec<String> = locked.iter().map(|u| u.id.clone()).collect();
                let still_expired: std::collections::HashSet<String> =
                    expired_user_ids(conn, cutoff, Some(&ids))?
                        .into_iter()
                        .collect();
                locked
                    .into_iter()
                    .filter(|u| still_expired.contains(&u.id))
                    .collect()
            }
        };
        let ids: Vec<&str> = selected.iter().map(|u| u.id.as_str()).collect();
        for chunk in ids.chunks(MAX_BOUND_PER_QUERY) {
            diesel::delete(users::table.filter(users::id.eq_any(chunk))).execute(conn)?;
        }
        let events: Vec<NewAuditEvent> = selected
            .iter()
            .map(|user| {
                let detail = if user.enrolled_at.is_some() {
                    format!("{} (had joined)", user.label().name)
                } else {
                    user.label().name
                };
                NewAuditEvent::new(
                    change.now,
                    change.actor,
                    Action::Remove,
                    Some(&user.email),
                    detail,
                )
                .about_user(&user.id)
            })
            .collect();
        audit::record(conn, &events)?;
        Ok(selected.iter().map(UserIdentity::label).collect())
    })
}

/// Ids of users who never joined and whose invitation expired before `cutoff`, among
/// `among` when given.
fn expired_user_ids(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    among: Option<&[String]>,
) -> QueryResult<Vec<String>> {
    let query = || {
        crate::users::status::users_with_live_invitation()
            .filter(crate::users::status::expired_by(cutoff))
            .select(users::id)
            .into_boxed()
    };
    match among {
        None => query().load(conn),
        Some(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(MAX_BOUND_PER_QUERY) {
                found.extend(
                    query()
                        .filter(users::id.eq_any(chunk))
                        .load::<String>(conn)?,
                );
            }
            Ok(found)
        }
    }
}

/// The live, unused, unexpired invitations this account sent to people who have not
/// joined: what disabling the account can revoke.
fn pending_issued_by(
    conn: &mut DbConnection,
    account_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<(String, UserIdentity)>> {
    invitations::table
        .inner_join(users::table)
        .filter(invitations::created_by.eq(account_id))
        .filter(invitations::superseded_at.is_null())
        .filter(invitations::used_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .filter(users::enrolled_at.is_null())
        .select((invitations::id, UserIdentity::as_select()))
        .load(conn)
}

pub fn count_pending_issued_by(
    conn: &mut DbConnection,
    account_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    Ok(pending_issued_by(conn, account_id, now)?.len())
}

/// Ends those invitations now (they read as Expired, and can be resent by someone
/// still here) and stops their unsent emails. Runs in the caller's transaction.
pub fn revoke_issued_by(
    conn: &mut DbConnection,
    change: &Change<'_>,
    account_id: &str,
) -> QueryResult<usize> {
    // Users first, as every change to them does; then what is still pending.
    let user_ids: Vec<String> = pending_issued_by(conn, account_id, change.now)?
        .into_iter()
        .map(|(_, user)| user.id)
        .collect();
    lock_users(conn, &user_ids)?;
    let pending = pending_issued_by(conn, account_id, change.now)?;
    let ids: Vec<String> = pending.iter().map(|(id, _)| id.clone()).collect();
    for chunk in ids.chunks(MAX_BOUND_PER_QUERY) {
        diesel::update(invitations::table.filter(invitations::id.eq_any(chunk)))
            .set(invitations::expires_at.eq(change.now))
            .execute(conn)?;
    }
    outbox::cancel_unsent(
        conn,
        &ids,
        &[EmailKind::Invitation.as_str(), EmailKind::Reminder.as_str()],
    )?;
    let events: Vec<NewAuditEvent> = pending
        .iter()
        .map(|(_, user)| {
            NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Revoke,
                Some(&user.email),
                "the account that sent it was disabled",
            )
            .about_user(&user.id)
        })
        .collect();
    audit::record(conn, &events)?;
    Ok(pending.len())
}
