//! Invite, resend, remove and enroll: each one transaction, with its emails queued and
//! its audit events written inside it. What they share is here: the fresh invitation
//! with its emails, and locking users in one order.

mod create;
mod enroll;
mod invite;
pub mod provision;
mod remove;
mod resend;

pub use create::{
    CreateOutcome, RevokeOutcome, UninvitedUser, change_tags, create_uninvited, revoke,
};
pub use enroll::{EnrollOutcome, Invitee, TokenState, enroll, look_up};
pub use invite::{InviteOutcome, invite, was_submitted};
pub use remove::{Removal, count_pending_issued_by, remove, revoke_issued_by};
pub use resend::{ResendReport, resend};

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use secrecy::SecretString;

use super::{EnrollmentToken, NewInvitee, UserLabel, name_key, search_key};
use crate::audit::{self, Action, Actor, NewAuditEvent};
use crate::db::schema::{form_submissions, invitation_settings, invitations, users};
use crate::db::{self, DbConnection, MAX_BOUND_PER_QUERY, insert_rows, write_transaction};
use crate::error::Error;
use crate::mail::MailKey;
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
    /// The API's UserId: the caller's choice through CreateUser, else the user's id.
    api_user_id: String,
    client_request_token: Option<String>,
    /// The credential (identity provider) that created the user, by name.
    provisioned_by: Option<String>,
    external_id: Option<String>,
    deactivated_at: Option<NaiveDateTime>,
}

impl NewUser {
    /// The row of a person joining the directory now, made by whoever `change` names:
    /// invited, made through the API or provisioned, the same keys and search entry.
    fn new(id: &str, invitee: &NewInvitee, change: &Change<'_>) -> Self {
        let (first, last, email) = (
            invitee.first_name.as_str(),
            invitee.last_name.as_str(),
            invitee.email.as_str(),
        );
        Self {
            id: id.to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: email.to_owned(),
            email_key: invitee.email.key(),
            name_key: name_key(first, last),
            search_key: search_key(first, last, email),
            created_at: change.now,
            invited_by: change.actor.account_id.clone(),
            search_id: i64::from_le_bytes(crate::crypto::random_bytes()) & i64::MAX,
            api_user_id: id.to_owned(),
            client_request_token: None,
            provisioned_by: change.actor.credential_name.clone(),
            external_id: None,
            deactivated_at: None,
        }
    }
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
/// reminder scheduled before it expires (when reminders are on), their bodies sealed
/// with `key` so that the database never holds a readable link.
struct FreshInvitation {
    invitation: NewInvitation,
    emails: Vec<NewOutboundEmail>,
    link: QueuedLink,
}

fn fresh_invitation(
    change: &Change<'_>,
    settings: &InvitationSettings,
    key: &MailKey,
    user_id: &str,
    first_name: &str,
    recipient: &str,
) -> Result<FreshInvitation, Error> {
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
        // A machine's name ("SCIM: Okta") means nothing to the invitee.
        inviter: match &change.actor.credential_id {
            Some(_) => "An administrator",
            None => change.actor.email.as_deref().unwrap_or("An administrator"),
        },
        link: &link,
        expires_at,
    };
    let mut emails = vec![outbound(
        compose::render_invitation(settings, &invitee, change.now)?,
        settings,
        key,
        &invitation.id,
        recipient,
        EmailKind::Invitation,
        change.now,
        change.now,
    )];
    if let Some(days) = settings.reminder_days {
        let remind_at = expires_at - TimeDelta::days(i64::from(days));
        if remind_at > change.now {
            emails.push(outbound(
                compose::render_reminder(settings, &invitee, remind_at)?,
                settings,
                key,
                &invitation.id,
                recipient,
                EmailKind::Reminder,
                remind_at,
                change.now,
            ));
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

/// An outbox row that sends this email to `recipient` at `due_at`.
#[allow(clippy::too_many_arguments)]
fn outbound(
    email: compose::RenderedEmail,
    settings: &InvitationSettings,
    key: &MailKey,
    invitation_id: &str,
    recipient: &str,
    kind: EmailKind,
    due_at: NaiveDateTime,
    now: NaiveDateTime,
) -> NewOutboundEmail {
    NewOutboundEmail::new(
        invitation_id,
        kind,
        &compose::sender_display_name(settings),
        &settings.sender_address,
        Some(&settings.contact_email),
        recipient,
        email,
        key,
        due_at,
        now,
    )
}

fn insert_fresh(conn: &mut DbConnection, fresh: &[FreshInvitation]) -> QueryResult<()> {
    let rows: Vec<NewInvitation> = fresh.iter().map(|f| f.invitation.clone()).collect();
    insert_rows!(conn, invitations::table, rows)?;
    let emails: Vec<NewOutboundEmail> = fresh.iter().flat_map(|f| f.emails.clone()).collect();
    outbox::enqueue(conn, &emails)
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
    pub deactivated_at: Option<NaiveDateTime>,
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
        locked.extend(db::locked!(
            conn,
            for_update,
            users::table
                .filter(users::id.eq_any(chunk))
                .order(users::id)
                .select(UserIdentity::as_select()),
            load
        )?);
    }
    locked.sort_by(|a, b| (&a.name_key, &a.id).cmp(&(&b.name_key, &b.id)));
    Ok(locked)
}

/// Locks the user a token belongs to, so that joining takes row locks in the same order
/// (user, then invitation) as removing and resending; SQLite's write lock already
/// serializes them.
fn lock_user_of_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<()> {
    let user_id: Option<String> = invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .select(invitations::user_id)
        .first(conn)
        .optional()?;
    if let Some(user_id) = user_id {
        let _: Option<String> = db::locked!(
            conn,
            for_update,
            users::table.find(user_id).select(users::id),
            first
        )
        .optional()?;
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
