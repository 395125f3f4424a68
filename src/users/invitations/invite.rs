//! Inviting people: users, invitations and emails, all or nothing.

use chrono::TimeDelta;
use diesel::prelude::*;

use super::*;

pub enum InviteOutcome {
    Invited(Vec<QueuedLink>),
    /// These addresses (lower-cased) already belong to users; nothing was saved.
    AlreadyInvited(Vec<String>),
    /// This form was submitted before (a double click, a second tab); nothing was saved.
    AlreadySubmitted,
}

/// How long a submitted form's key is remembered.
const SUBMISSION_MEMORY: TimeDelta = TimeDelta::days(7);

/// Whether a form with this idempotency key was already submitted.
pub fn was_submitted(conn: &mut DbConnection, submission_key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        form_submissions::table.find(submission_key),
    ))
    .get_result(conn)
}

/// Creates every invitee with an invitation and a queued email, or nothing at all.
/// With a `submission_key`, a second submission of the same form saves nothing.
pub fn invite(
    conn: &mut DbConnection,
    change: &Change<'_>,
    settings: &InvitationSettings,
    key: &MailKey,
    invitees: &[NewInvitee],
    submission_key: Option<&str>,
) -> Result<InviteOutcome, Error> {
    let keys: Vec<String> = invitees.iter().map(|i| i.email.key()).collect();
    // Rows, emails and all, are made before the transaction: rendering a thousand emails
    // inside it would hold SQLite's one write lock, and every other writer waits for it.
    // They are wasted only when nothing is saved (a form sent twice, a taken address).
    let mut new_users = Vec::with_capacity(invitees.len());
    let mut fresh = Vec::with_capacity(invitees.len());
    let mut events = Vec::with_capacity(invitees.len());
    for invitee in invitees {
        let user_id = uuid::Uuid::now_v7().to_string();
        let (first, email) = (invitee.first_name.as_str(), invitee.email.as_str());
        new_users.push(NewUser::new(&user_id, invitee, change));
        fresh.push(fresh_invitation(
            change, settings, key, &user_id, first, email,
        )?);
        events.push(
            NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Invite,
                Some(email),
                invitee.display_name(),
            )
            .about_user(&user_id),
        );
    }
    let result: Result<InviteOutcome, Error> = write_transaction(conn, |conn| {
        if let Some(key) = submission_key
            && was_submitted(conn, key)?
        {
            return Ok(InviteOutcome::AlreadySubmitted);
        }
        let existing = existing_email_keys(conn, &keys)?;
        if !existing.is_empty() {
            // The same form may have been saved between the two reads (on PostgreSQL each
            // statement sees what committed before it): its key came with the addresses.
            if let Some(key) = submission_key
                && was_submitted(conn, key)?
            {
                return Ok(InviteOutcome::AlreadySubmitted);
            }
            return Ok(InviteOutcome::AlreadyInvited(existing));
        }
        if let Some(key) = submission_key {
            // Of two identical submissions, the second stops here (unique key).
            diesel::insert_into(form_submissions::table)
                .values((
                    form_submissions::submission_key.eq(key),
                    form_submissions::account_id.eq(&change.actor.account_id),
                    form_submissions::created_at.eq(change.now),
                ))
                .execute(conn)?;
            diesel::delete(
                form_submissions::table
                    .filter(form_submissions::created_at.lt(change.now - SUBMISSION_MEMORY)),
            )
            .execute(conn)?;
        }
        insert_rows!(conn, users::table, new_users)?;
        insert_fresh(conn, &fresh)?;
        audit::record(conn, &events)?;
        Ok(InviteOutcome::Invited(
            fresh.into_iter().map(|f| f.link).collect(),
        ))
    });
    match result {
        // The same form was submitted meanwhile, or someone invited one of these
        // addresses between our check and our insert.
        Err(error) if error.is_unique_violation() => {
            if let Some(key) = submission_key
                && was_submitted(conn, key)?
            {
                return Ok(InviteOutcome::AlreadySubmitted);
            }
            let existing = existing_email_keys(conn, &keys)?;
            Ok(InviteOutcome::AlreadyInvited(existing))
        }
        other => other,
    }
}
