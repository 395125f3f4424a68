//! Who did what to whom, when, and from where: written in the same transaction as the
//! change it describes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::audit_events;
use crate::db::{DbConnection, insert_rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Invite,
    Resend,
    Remove,
    Revoke,
    Export,
    Enroll,
    SignIn,
    SignInFailed,
    SignOut,
    SettingsChange,
    AccountAdd,
    AccountChange,
    CredentialAdd,
    CredentialRevoke,
    Deactivate,
    Reactivate,
    UserChange,
    /// Made without an invitation (through the API).
    Create,
    /// Tags added, changed or removed.
    Tag,
}

impl Action {
    pub const ALL: [Self; 19] = [
        Self::Invite,
        Self::Resend,
        Self::Remove,
        Self::Revoke,
        Self::Export,
        Self::Enroll,
        Self::SignIn,
        Self::SignInFailed,
        Self::SignOut,
        Self::SettingsChange,
        Self::AccountAdd,
        Self::AccountChange,
        Self::CredentialAdd,
        Self::CredentialRevoke,
        Self::Deactivate,
        Self::Reactivate,
        Self::UserChange,
        Self::Create,
        Self::Tag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Resend => "resend",
            Self::Remove => "remove",
            Self::Revoke => "revoke",
            Self::Export => "export",
            Self::Enroll => "enroll",
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::SignOut => "sign_out",
            Self::SettingsChange => "settings_change",
            Self::AccountAdd => "account_add",
            Self::AccountChange => "account_change",
            Self::CredentialAdd => "credential_add",
            Self::CredentialRevoke => "credential_revoke",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
            Self::UserChange => "user_change",
            Self::Create => "create",
            Self::Tag => "tag",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Invite => "Invited",
            Self::Resend => "Resent invitation",
            Self::Remove => "Removed",
            Self::Revoke => "Revoked invitation",
            Self::Export => "Exported users (CSV)",
            Self::Enroll => "Joined",
            Self::SignIn => "Signed in",
            Self::SignInFailed => "Sign-in failed",
            Self::SignOut => "Signed out",
            Self::SettingsChange => "Changed invitation settings",
            Self::AccountAdd => "Added console account",
            Self::AccountChange => "Changed console account",
            Self::CredentialAdd => "Added API credential",
            Self::CredentialRevoke => "Revoked API credential",
            Self::Deactivate => "Deactivated",
            Self::Reactivate => "Reactivated",
            Self::UserChange => "Changed user",
            Self::Create => "Added without an invitation",
            Self::Tag => "Changed tags",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

/// Who acts: a console account, an invitee (no account), or the command line.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub account_id: Option<String>,
    /// How the log names the actor: an address, "command line", "SCIM: Okta".
    pub email: Option<String>,
    pub client_ip: Option<String>,
    /// A machine credential acting: its id and its name as typed ("Okta").
    pub credential_id: Option<String>,
    pub credential_name: Option<String>,
}

impl Actor {
    pub fn account(account_id: &str, email: &str, client_ip: Option<String>) -> Self {
        Self {
            account_id: Some(account_id.to_owned()),
            email: Some(email.to_owned()),
            client_ip,
            ..Self::default()
        }
    }

    pub fn anonymous(client_ip: Option<String>) -> Self {
        Self {
            client_ip,
            ..Self::default()
        }
    }

    /// A machine credential, named in the log as `label` ("SCIM: Okta").
    pub fn credential(id: &str, label: &str, name: &str, client_ip: Option<String>) -> Self {
        Self {
            email: Some(label.to_owned()),
            client_ip,
            credential_id: Some(id.to_owned()),
            credential_name: Some(name.to_owned()),
            ..Self::default()
        }
    }

    pub fn command_line() -> Self {
        Self {
            email: Some("command line".to_owned()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewAuditEvent {
    id: String,
    occurred_at: NaiveDateTime,
    actor_id: Option<String>,
    actor_email: Option<String>,
    action: &'static str,
    subject_email: Option<String>,
    detail: String,
    client_ip: Option<String>,
    subject_user_id: Option<String>,
}

impl NewAuditEvent {
    pub fn new(
        now: NaiveDateTime,
        actor: &Actor,
        action: Action,
        subject_email: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: now,
            actor_id: actor
                .account_id
                .clone()
                .or_else(|| actor.credential_id.clone()),
            actor_email: actor.email.clone(),
            action: action.as_str(),
            subject_email: subject_email.map(str::to_owned),
            detail: detail.into(),
            client_ip: actor.client_ip.clone(),
            subject_user_id: None,
        }
    }

    /// Ties the event to a user, for that user's history.
    pub fn about_user(mut self, user_id: &str) -> Self {
        self.subject_user_id = Some(user_id.to_owned());
        self
    }
}

/// A user's events, oldest first.
pub fn for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<AuditRow>> {
    audit_events::table
        .filter(audit_events::subject_user_id.eq(user_id))
        .order((audit_events::occurred_at.asc(), audit_events::id.asc()))
        .select(AuditRow::as_select())
        .load(conn)
}

pub fn record(conn: &mut DbConnection, events: &[NewAuditEvent]) -> QueryResult<()> {
    insert_rows!(conn, audit_events::table, events)?;
    Ok(())
}

diesel::define_sql_function! {
    /// SQL `lower()`, on both engines (addresses are ASCII, which both lower-case alike).
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Audit log filters and the page position, from the URL.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<Action>,
    /// Part of the acting account's address.
    pub actor: String,
    /// Part of the address the action was about.
    pub subject: String,
    /// Show entries older than this one (time and id of the last row seen).
    pub before: Option<(NaiveDateTime, String)>,
    pub per_page: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_email: Option<String>,
    pub action: String,
    pub subject_email: Option<String>,
    pub detail: String,
    pub client_ip: Option<String>,
}

fn contains_pattern(text: &str) -> String {
    let escaped: String = text
        .trim()
        .to_lowercase()
        .chars()
        .take(200)
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// Newest first; returns one page and whether older entries remain.
pub fn page(conn: &mut DbConnection, query: &AuditQuery) -> QueryResult<(Vec<AuditRow>, bool)> {
    let mut boxed = audit_events::table
        .select(AuditRow::as_select())
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .limit(query.per_page + 1)
        .into_boxed();
    if let Some(action) = query.action {
        boxed = boxed.filter(audit_events::action.eq(action.as_str()));
    }
    if !query.actor.trim().is_empty() {
        boxed = boxed.filter(
            lower(audit_events::actor_email.assume_not_null())
                .like(contains_pattern(&query.actor))
                .escape('\\'),
        );
    }
    if !query.subject.trim().is_empty() {
        boxed = boxed.filter(
            lower(audit_events::subject_email.assume_not_null())
                .like(contains_pattern(&query.subject))
                .escape('\\'),
        );
    }
    if let Some((at, id)) = &query.before {
        boxed = boxed.filter(
            audit_events::occurred_at
                .lt(*at)
                .or(audit_events::occurred_at
                    .eq(*at)
                    .and(audit_events::id.lt(id.clone()))),
        );
    }
    let mut rows = boxed.load::<AuditRow>(conn)?;
    let more = rows.len() as i64 > query.per_page;
    rows.truncate(usize::try_from(query.per_page).unwrap_or(0));
    Ok((rows, more))
}
