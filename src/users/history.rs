//! One user's timeline: who invited them, what became of each email, resends,
//! reminders, revocations and joining. Never a link or a token.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::list::UserRow;
use super::status::users_with_live_invitation;
use crate::audit::{self, Action};
use crate::db::DbConnection;
use crate::db::schema::{invitations, outbound_emails, users};
use crate::mail::outbox::{EmailKind, status};
use crate::time_format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Good,
    Bad,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub at: NaiveDateTime,
    pub title: String,
    pub detail: String,
    pub tone: Tone,
}

impl Entry {
    fn new(
        at: NaiveDateTime,
        title: impl Into<String>,
        detail: impl Into<String>,
        tone: Tone,
    ) -> Self {
        Self {
            at,
            title: title.into(),
            detail: detail.into(),
            tone,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = outbound_emails)]
struct EmailFacts {
    kind: String,
    status: String,
    attempts: i32,
    created_at: NaiveDateTime,
    next_attempt_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
    failed_at: Option<NaiveDateTime>,
    last_error: Option<String>,
}

/// The user as the Users page shows them, and their timeline, oldest first.
pub fn load(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(UserRow, Vec<Entry>)>> {
    let user: Option<UserRow> = users_with_live_invitation()
        .filter(users::id.eq(user_id))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    let Some(user) = user else {
        return Ok(None);
    };
    let mut entries: Vec<Entry> = audit::for_user(conn, user_id)?
        .into_iter()
        .filter_map(|event| {
            let actor = event.actor_email.unwrap_or_else(|| "someone".to_owned());
            let (title, detail, tone) = match Action::parse(&event.action)? {
                Action::Invite => match &user.provisioned_by {
                    Some(name) => (
                        format!("Provisioned by {name}"),
                        "Created by the identity provider (SCIM).".to_owned(),
                        Tone::Neutral,
                    ),
                    None => (format!("Invited by {actor}"), String::new(), Tone::Neutral),
                },
                Action::Deactivate => (
                    format!("Deactivated by {actor}"),
                    "Every link of theirs stopped working; queued email was not sent.".to_owned(),
                    Tone::Bad,
                ),
                Action::Reactivate => (
                    format!("Reactivated by {actor}"),
                    event.detail,
                    Tone::Neutral,
                ),
                Action::UserChange => (format!("Changed by {actor}"), event.detail, Tone::Neutral),
                Action::Resend => (
                    format!("Invitation resent by {actor}"),
                    "Earlier links stopped working.".to_owned(),
                    Tone::Neutral,
                ),
                Action::Revoke => (
                    format!("Invitation revoked by {actor}"),
                    event.detail,
                    Tone::Bad,
                ),
                Action::Enroll => ("Joined".to_owned(), String::new(), Tone::Good),
                Action::Create => (
                    format!("Added by {actor}, not invited yet"),
                    String::new(),
                    Tone::Neutral,
                ),
                Action::Tag => (
                    format!("Tags changed by {actor}"),
                    event.detail,
                    Tone::Neutral,
                ),
                _ => return None,
            };
            Some(Entry::new(event.occurred_at, title, detail, tone))
        })
        .collect();
    let emails: Vec<EmailFacts> = outbound_emails::table
        .inner_join(invitations::table)
        .filter(invitations::user_id.eq(user_id))
        .order(outbound_emails::created_at.asc())
        .select(EmailFacts::as_select())
        .load(conn)?;
    for email in emails {
        entries.extend(email_entries(&email, now));
    }
    entries.sort_by_key(|entry| entry.at);
    Ok(Some((user, entries)))
}

fn email_entries(email: &EmailFacts, now: NaiveDateTime) -> Vec<Entry> {
    let reminder = email.kind == EmailKind::Reminder.as_str();
    let what = if reminder {
        "Reminder"
    } else {
        "Invitation email"
    };
    let mut entries = Vec::new();
    if reminder {
        if email.status == status::QUEUED && email.next_attempt_at > now && email.attempts == 0 {
            entries.push(Entry::new(
                email.created_at,
                "Reminder scheduled",
                format!("To be sent {}.", time_format::short(email.next_attempt_at)),
                Tone::Neutral,
            ));
        }
    } else {
        entries.push(Entry::new(
            email.created_at,
            "Invitation email queued",
            "",
            Tone::Neutral,
        ));
    }
    if let Some(sent_at) = email.sent_at {
        entries.push(Entry::new(
            sent_at,
            format!("{what} accepted by the mail server"),
            "",
            Tone::Good,
        ));
    }
    if let Some(failed_at) = email.failed_at {
        entries.push(Entry::new(
            failed_at,
            format!("{what} could not be delivered"),
            email.last_error.clone().unwrap_or_default(),
            Tone::Bad,
        ));
    }
    if email.status == status::CANCELLED {
        entries.push(Entry::new(
            email.created_at,
            format!("{what} not sent"),
            "A newer invitation, joining or a revocation made it unnecessary.",
            Tone::Neutral,
        ));
    }
    if matches!(email.status.as_str(), status::QUEUED | status::SENDING)
        && email.attempts > 0
        && let Some(error) = &email.last_error
    {
        entries.push(Entry::new(
            email.created_at,
            format!(
                "{what} not yet accepted after {} attempt(s)",
                email.attempts
            ),
            format!(
                "Last answer: {error}. Next try {}.",
                time_format::short(email.next_attempt_at)
            ),
            Tone::Bad,
        ));
    }
    entries
}
