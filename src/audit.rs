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
    Enroll,
    SignIn,
    SignInFailed,
    SignOut,
    SettingsChange,
    AccountAdd,
    AccountChange,
}

impl Action {
    pub const ALL: [Self; 10] = [
        Self::Invite,
        Self::Resend,
        Self::Remove,
        Self::Enroll,
        Self::SignIn,
        Self::SignInFailed,
        Self::SignOut,
        Self::SettingsChange,
        Self::AccountAdd,
        Self::AccountChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Resend => "resend",
            Self::Remove => "remove",
            Self::Enroll => "enroll",
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::SignOut => "sign_out",
            Self::SettingsChange => "settings_change",
            Self::AccountAdd => "account_add",
            Self::AccountChange => "account_change",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Invite => "Invited",
            Self::Resend => "Resent invitation",
            Self::Remove => "Removed",
            Self::Enroll => "Joined",
            Self::SignIn => "Signed in",
            Self::SignInFailed => "Sign-in failed",
            Self::SignOut => "Signed out",
            Self::SettingsChange => "Changed invitation settings",
            Self::AccountAdd => "Added console account",
            Self::AccountChange => "Changed console account",
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
    pub email: Option<String>,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn account(account_id: &str, email: &str, client_ip: Option<String>) -> Self {
        Self {
            account_id: Some(account_id.to_owned()),
            email: Some(email.to_owned()),
            client_ip,
        }
    }

    pub fn anonymous(client_ip: Option<String>) -> Self {
        Self {
            client_ip,
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
            actor_id: actor.account_id.clone(),
            actor_email: actor.email.clone(),
            action: action.as_str(),
            subject_email: subject_email.map(str::to_owned),
            detail: detail.into(),
            client_ip: actor.client_ip.clone(),
        }
    }
}

pub fn record(conn: &mut DbConnection, events: &[NewAuditEvent]) -> QueryResult<()> {
    insert_rows!(conn, audit_events::table, events)?;
    Ok(())
}
