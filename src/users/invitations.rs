//! Invite, resend, remove and enroll: each one transaction, with its emails queued and
//! its audit events written inside it.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use secrecy::SecretString;

use super::{EnrollmentToken, NewInvitee, UserLabel, name_key, search_key};
use crate::audit::{self, Action, Actor, NewAuditEvent};
use crate::db::schema::{form_submissions, invitation_settings, invitations, users};
use crate::db::{
    DbConnection, MAX_BOUND_PER_QUERY, insert_rows, is_unique_violation, write_transaction,
};
use crate::error::AppError;
use crate::mail::compose;
use crate::mail::outbox::{self, EmailKind, NewOutboundEmail};
use crate::settings::InvitationSettings;

/// Who is acting, and when.
pub struct Change<'a> {
    pub now: NaiveDateTime,
    pub actor: &'a Actor,
}

/// A link that was just made, for the log when email is written to files.
pub struct QueuedLink {
    pub recipient: String,
    pub link: SecretString,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
#[diesel(treat_none_as_default_value = false)]
struct NewUser {
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    email_key: String,
    name_key: String,
    search_key: String,
    created_at: NaiveDateTime,
    invited_by: Option<String>,
    /// Key of the user's entry in the search index.
    search_id: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = invitations)]
#[diesel(treat_none_as_default_value = false)]
struct NewInvitation {
    id: String,
    user_id: String,
    token_hash: String,
    created_at: NaiveDateTime,
    created_by: Option<String>,
    expires_at: NaiveDateTime,
}

/// The rows that one fresh invitation adds: the invitation, its email, and the
/// reminder scheduled before it expires (when reminders are on).
struct FreshInvitation {
    invitation: NewInvitation,
    emails: Vec<NewOutboundEmail>,
    link: QueuedLink,
}

fn fresh_invitation(
    change: &Change<'_>,
    settings: &InvitationSettings,
    user_id: &str,
    first_name: &str,
    recipient: &str,
) -> Result<FreshInvitation, AppError> {
    let token = EnrollmentToken::generate();
    let link = token.link(&settings.public_url);
    let expires_at = change.now + TimeDelta::days(i64::from(settings.validity_days));
    let invitation = NewInvitation {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        token_hash: token.hash(),
        created_at: change.now,
        created_by: change.actor.account_id.clone(),
        expires_at,
    };
    let invitee = compose::Invitee {
        first_name,
        recipient,
        inviter: change.actor.email.as_deref().unwrap_or("An administrator"),
        link: &link,
        expires_at,
    };
    let mut emails = vec![
        compose::render_invitation(settings, &invitee, change.now)?.into_outbound(
            settings,
            &invitation.id,
            recipient,
            EmailKind::Invitation,
            change.now,
            change.now,
        ),
    ];
    if let Some(days) = settings.reminder_days {
        let remind_at = expires_at - TimeDelta::days(i64::from(days));
        if remind_at > change.now {
            emails.push(
                compose::render_reminder(settings, &invitee, remind_at)?.into_outbound(
                    settings,
                    &invitation.id,
                    recipient,
                    EmailKind::Reminder,
                    remind_at,
                    change.now,
                ),
            );
        }
    }
    Ok(FreshInvitation {
        invitation,
        emails,
        link: QueuedLink {
            recipient: recipient.to_owned(),
            link: SecretString::from(link),
        },
    })
}

fn insert_fresh(conn: &mut DbConnection, fresh: &[FreshInvitation]) -> QueryResult<()> {
    let rows: Vec<NewInvitation> = fresh.iter().map(|f| f.invitation.clone()).collect();
    insert_rows!(conn, invitations::table, rows)?;
    let emails: Vec<NewOutboundEmail> = fresh.iter().flat_map(|f| f.emails.clone()).collect();
    outbox::enqueue(conn, &emails)
}

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
    invitees: &[NewInvitee],
    submission_key: Option<&str>,
) -> Result<InviteOutcome, AppError> {
    let keys: Vec<String> = invitees.iter().map(|i| i.email.key()).collect();
    // Rows, emails and all, are made before the transaction: rendering a thousand emails
    // inside it would hold SQLite's one write lock, and every other writer waits for it.
    // They are wasted only when nothing is saved (a form sent twice, a taken address).
    let mut new_users = Vec::with_capacity(invitees.len());
    let mut fresh = Vec::with_capacity(invitees.len());
    let mut events = Vec::with_capacity(invitees.len());
    for invitee in invitees {
        let user_id = uuid::Uuid::now_v7().to_string();
        let (first, last, email) = (
            invitee.first_name.as_str(),
            invitee.last_name.as_str(),
            invitee.email.as_str(),
        );
        new_users.push(NewUser {
            id: user_id.clone(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: email.to_owned(),
            email_key: invitee.email.key(),
            name_key: name_key(first, last),
            search_key: search_key(first, last, email),
            created_at: change.now,
            invited_by: change.actor.account_id.clone(),
            search_id: i64::from_le_bytes(crate::crypto::random_bytes()) & i64::MAX,
        });
        fresh.push(fresh_invitation(change, settings, &user_id, first, email)?);
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
    let result = write_transaction(conn, |conn| {
        if let Some(key) = submission_key
            && was_submitted(conn, key)?
        {
            return Ok(InviteOutcome::AlreadySubmitted);
        }
        let existing = existing_email_keys(conn, &keys)?;
        if !existing.is_empty() {
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
        Err(AppError::Database(e)) if is_unique_violation(&e) => {
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

pub fn existing_email_keys(conn: &mut DbConnection, keys: &[String]) -> QueryResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(MAX_BOUND_PER_QUERY) {
        found.extend(
            users::table
                .filter(users::email_key.eq_any(chunk))
                .select(users::email_key)
                .load::<String>(conn)?,
        );
    }
    Ok(found)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserIdentity {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub name_key: String,
    pub enrolled_at: Option<NaiveDateTime>,
}

impl UserIdentity {
    pub fn label(&self) -> UserLabel {
        UserLabel {
            name: format!("{} {}", self.first_name, self.last_name),
            email: self.email.clone(),
        }
    }
}

/// The selected users, locked against concurrent change where the engine can, in name
/// order. Every change to users locks them first, always in id order, so that two
/// changes to the same users cannot each hold a lock the other waits for.
fn lock_users(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<UserIdentity>> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut locked = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BOUND_PER_QUERY) {
        // Built per arm: `as_select` is typed by the backend it runs on.
        macro_rules! selected {
            () => {
                users::table
                    .filter(users::id.eq_any(chunk))
                    .order(users::id)
                    .select(UserIdentity::as_select())
            };
        }
        locked.extend(match conn {
            DbConnection::Postgresql(pg) => selected!().for_update().load(pg)?,
            DbConnection::Sqlite(sqlite) => selected!().load(sqlite)?,
        });
    }
    locked.sort_by(|a, b| (&a.name_key, &a.id).cmp(&(&b.name_key, &b.id)));
    Ok(locked)
}

/// Locks the user a token belongs to, so that joining takes row locks in the same order
/// (user, then invitation) as removing and resending; SQLite's write lock already
/// serializes them.
fn lock_user_of_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        let user_id: Option<String> = invitations::table
            .filter(invitations::token_hash.eq(token_hash))
            .select(invitations::user_id)
            .first(pg)
            .optional()?;
        if let Some(user_id) = user_id {
            users::table
                .find(user_id)
                .select(users::id)
                .for_update()
                .first::<String>(pg)
                .optional()?;
        }
    }
    Ok(())
}

/// The selected users as they are now (for the removal confirmation page).
pub fn find_users(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<UserIdentity>> {
    users::table
        .filter(users::id.eq_any(ids))
        .order(users::name_key)
        .select(UserIdentity::as_select())
        .load(conn)
}

#[derive(Default)]
pub struct ResendReport {
    pub resent: Vec<UserLabel>,
    pub already_enrolled: Vec<UserLabel>,
    /// Resent too often in the last hour, with when they can be resent again.
    pub rate_limited: Vec<(UserLabel, NaiveDateTime)>,
    /// Selected, but gone by the time we looked (removed meanwhile).
    pub missing: usize,
    pub links: Vec<QueuedLink>,
}

/// For users resent `limit` times within the last hour (each resend supersedes one
/// invitation), the moment the oldest of those leaves the hour.
fn resend_waits(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    users: &[UserIdentity],
    limit: u32,
) -> QueryResult<std::collections::HashMap<String, NaiveDateTime>> {
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let hour_ago = now - TimeDelta::hours(1);
    let recent: Vec<(String, Option<NaiveDateTime>)> = invitations::table
        .filter(invitations::user_id.eq_any(&ids))
        .filter(invitations::superseded_at.gt(hour_ago))
        .order(invitations::superseded_at.desc())
        .select((invitations::user_id, invitations::superseded_at))
        .load(conn)?;
    let mut per_user: std::collections::HashMap<String, Vec<NaiveDateTime>> =
        std::collections::HashMap::new();
    for (user_id, at) in recent {
        per_user.entry(user_id).or_default().extend(at);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(per_user
        .into_iter()
        .filter(|(_, times)| times.len() >= limit)
        .filter_map(|(user_id, times)| {
            // Newest first: the limit-th newest resend is the one that must age out.
            let blocking = times.get(limit.checked_sub(1)?)?;
            Some((user_id, *blocking + TimeDelta::hours(1)))
        })
        .collect())
}

/// Gives each selected, not-yet-enrolled user a new token and a new email; their older
/// tokens stop working in the same transaction.
pub fn resend(
    conn: &mut DbConnection,
    change: &Change<'_>,
    settings: &InvitationSettings,
    user_ids: &[String],
    per_hour_limit: u32,
) -> Result<ResendReport, AppError> {
    write_transaction(conn, |conn| {
        let selected = lock_users(conn, user_ids)?;
        let mut report = ResendReport {
            missing: user_ids.len().saturating_sub(selected.len()),
            ..ResendReport::default()
        };
        let (enrolled, not_enrolled): (Vec<_>, Vec<_>) =
            selected.into_iter().partition(|u| u.enrolled_at.is_some());
        report.already_enrolled = enrolled.iter().map(UserIdentity::label).collect();
        let next_allowed = resend_waits(conn, change.now, &not_enrolled, per_hour_limit)?;
        let (limited, to_resend): (Vec<_>, Vec<_>) = not_enrolled
            .into_iter()
            .partition(|u| next_allowed.contains_key(&u.id));
        report.rate_limited = limited
            .iter()
            .map(|u| (u.label(), next_allowed[&u.id]))
            .collect();
        if to_resend.is_empty() {
            return Ok(report);
        }
        let ids: Vec<String> = to_resend.iter().map(|u| u.id.clone()).collect();
        let superseded: Vec<String> = invitations::table
            .filter(invitations::user_id.eq_any(&ids))
            .filter(invitations::superseded_at.is_null())
            .select(invitations::id)
            .load(conn)?;
        diesel::update(invitations::table.filter(invitations::id.eq_any(&superseded)))
            .set(invitations::superseded_at.eq(change.now))
            .execute(conn)?;
        outbox::cancel_unsent(
            conn,
            &superseded,
            &[EmailKind::Invitation.as_str(), EmailKind::Reminder.as_str()],
        )?;
        let mut fresh = Vec::with_capacity(to_resend.len());
        let mut events = Vec::with_capacity(to_resend.len());
        for user in &to_resend {
            fresh.push(fresh_invitation(
                change,
                settings,
                &user.id,
                &user.first_name,
                &user.email,
            )?);
            events.push(
                NewAuditEvent::new(
                    change.now,
                    change.actor,
                    Action::Resend,
                    Some(&user.email),
                    user.label().name,
                )
                .about_user(&user.id),
            );
        }
        insert_fresh(conn, &fresh)?;
        audit::record(conn, &events)?;
        report.resent = to_resend.iter().map(UserIdentity::label).collect();
        report.links = fresh.into_iter().map(|f| f.link).collect();
        Ok(report)
    })
}

/// Which users to remove.
#[derive(Clone, Copy)]
pub enum Removal<'a> {
    /// Chosen on the Users page.
    Selected(&'a [String]),
    /// Everyone who never joined and whose invitation expired before this time, as it
    /// stands once they are locked: someone resent to meanwhile stays.
    ExpiredBefore(NaiveDateTime),
}

/// Deletes users. Their invitations and unsent emails go with them (foreign keys
/// cascade), so their links stop working at once.
pub fn remove(
    conn: &mut DbConnection,
    change: &Change<'_>,
    which: Removal<'_>,
) -> Result<Vec<UserLabel>, AppError> {
    write_transaction(conn, |conn| {
        let selected = match which {
            Removal::Selected(ids) => lock_users(conn, ids)?,
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
        super::status::users_with_live_invitation()
            .filter(super::status::expired_by(cutoff))
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

/// What a token is good for right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    Valid(Invitee),
    Used(Invitee),
    Expired(Invitee),
    /// A newer invitation was sent to the same person.
    Superseded(Invitee),
    /// Never issued, or its user was removed: the two look the same to the visitor, so
    /// that a link never tells whoever holds it that someone was once invited.
    Unknown,
}

/// The invitee and organization an enrollment page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    pub email: String,
    pub first_name: String,
    pub organization: String,
    pub contact_email: String,
    pub after_join_url: String,
    pub expires_at: NaiveDateTime,
}

type InviteeColumns = (
    users::email,
    users::first_name,
    invitation_settings::organization_name,
    invitation_settings::contact_email,
    invitation_settings::after_join_url,
    invitations::expires_at,
    invitations::used_at,
    invitations::superseded_at,
);

const INVITEE_COLUMNS: InviteeColumns = (
    users::email,
    users::first_name,
    invitation_settings::organization_name,
    invitation_settings::contact_email,
    invitation_settings::after_join_url,
    invitations::expires_at,
    invitations::used_at,
    invitations::superseded_at,
);

type InviteeRow = (
    String,
    String,
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

pub fn look_up(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<TokenState> {
    let row: Option<InviteeRow> = invitations::table
        .inner_join(users::table)
        .inner_join(invitation_settings::table.on(invitation_settings::id.eq(1)))
        .filter(invitations::token_hash.eq(token_hash))
        .select(INVITEE_COLUMNS)
        .first(conn)
        .optional()?;
    let Some((
        email,
        first_name,
        organization,
        contact_email,
        after_join_url,
        expires_at,
        used_at,
        superseded_at,
    )) = row
    else {
        return Ok(TokenState::Unknown);
    };
    let invitee = Invitee {
        email,
        first_name,
        organization,
        contact_email,
        after_join_url,
        expires_at,
    };
    Ok(if used_at.is_some() {
        TokenState::Used(invitee)
    } else if superseded_at.is_some() {
        TokenState::Superseded(invitee)
    } else if expires_at <= now {
        TokenState::Expired(invitee)
    } else {
        TokenState::Valid(invitee)
    })
}

pub enum EnrollOutcome {
    Enrolled(Invitee),
    Refused(TokenState),
}

/// Consumes the token with one conditional update: of two simultaneous requests,
/// exactly one finds it unused.
pub fn enroll(
    conn: &mut DbConnection,
    change: &Change<'_>,
    token_hash: &str,
) -> Result<EnrollOutcome, AppError> {
    write_transaction(conn, |conn| {
        lock_user_of_token(conn, token_hash)?;
        let consumed = diesel::update(
            invitations::table
                .filter(invitations::token_hash.eq(token_hash))
                .filter(invitations::used_at.is_null())
                .filter(invitations::superseded_at.is_null())
                .filter(invitations::expires_at.gt(change.now)),
        )
        .set(invitations::used_at.eq(change.now))
        .execute(conn)?;
        if consumed == 0 {
            return Ok(EnrollOutcome::Refused(look_up(
                conn, token_hash, change.now,
            )?));
        }
        let (invitation_id, user_id): (String, String) = invitations::table
            .filter(invitations::token_hash.eq(token_hash))
            .select((invitations::id, invitations::user_id))
            .first(conn)?;
        diesel::update(users::table.find(&user_id))
            .set(users::enrolled_at.eq(change.now))
            .execute(conn)?;
        outbox::cancel_unsent(conn, &[invitation_id], &[EmailKind::Reminder.as_str()])?;
        let TokenState::Used(invitee) = look_up(conn, token_hash, change.now)? else {
            return Err(AppError::Unexpected(anyhow::anyhow!(
                "an invitation just used does not read as used"
            )));
        };
        audit::record(
            conn,
            &[NewAuditEvent::new(
                change.now,
                change.actor,
                Action::Enroll,
                Some(&invitee.email),
                format!("joined {}", invitee.organization),
            )
            .about_user(&user_id)],
        )?;
        Ok(EnrollOutcome::Enrolled(invitee))
    })
}
