//! Invite, resend, remove and enroll, as front doors call them.

use chrono::{NaiveDateTime, TimeDelta};

use super::{Error, Operations, Permission, Principal, Result};
use crate::settings::InvitationSettings;
use crate::users::invitations::{
    self, EnrollOutcome, InviteOutcome, Removal, ResendReport, TokenState, UserIdentity,
};
use crate::users::{EnrollmentToken, NewInvitee, UserLabel, list};

/// What an enrollment link leads to, with the organization's contact for pages that
/// cannot name an invitee.
pub struct TokenLookup {
    pub state: TokenState,
    pub contact_email: String,
    pub organization: String,
}

impl Operations {
    /// Creates every invitee with an invitation and a queued email, or nothing at all.
    /// With a `submission_key`, a second submission of the same form saves nothing.
    pub async fn invite(
        &self,
        principal: &Principal,
        invitees: Vec<NewInvitee>,
        submission_key: Option<String>,
    ) -> Result<InviteOutcome> {
        principal.require(Permission::Invite)?;
        let key = self.mail.key().clone();
        let outcome = self
            .as_change(principal, move |conn, change| {
                let settings = InvitationSettings::load(conn)?.ok_or(Error::NotSetUp)?;
                invitations::invite(
                    conn,
                    change,
                    &settings,
                    &key,
                    &invitees,
                    submission_key.as_deref(),
                )
            })
            .await?;
        if let InviteOutcome::Invited(links) = &outcome {
            self.users_changed(links);
            self.db.rows_changed(links.len());
        }
        Ok(outcome)
    }

    /// Which of these address keys already belong to users.
    pub async fn addresses_in_use(
        &self,
        principal: &Principal,
        keys: Vec<String>,
    ) -> Result<Vec<String>> {
        principal.require(Permission::Invite)?;
        self.db
            .run(move |conn| Ok(invitations::existing_email_keys(conn, &keys)?))
            .await
    }

    /// Whether the invite form with this idempotency key was already sent.
    pub async fn was_submitted(&self, principal: &Principal, key: String) -> Result<bool> {
        principal.require(Permission::Invite)?;
        self.db
            .run(move |conn| Ok(invitations::was_submitted(conn, &key)?))
            .await
    }

    /// Gives each selected, not-yet-enrolled user a new token and a new email; their
    /// older tokens stop working in the same transaction.
    pub async fn resend(
        &self,
        principal: &Principal,
        user_ids: Vec<String>,
    ) -> Result<ResendReport> {
        principal.require(Permission::Resend)?;
        let per_hour_limit = self.resend_limit_per_hour;
        let key = self.mail.key().clone();
        let report = self
            .as_change(principal, move |conn, change| {
                let settings = InvitationSettings::load(conn)?.ok_or(Error::NotSetUp)?;
                invitations::resend(conn, change, &settings, &key, &user_ids, per_hour_limit)
            })
            .await?;
        if !report.resent.is_empty() {
            self.users_changed(&report.links);
            self.db.rows_changed(report.resent.len());
        }
        Ok(report)
    }

    /// The selected users as they are now, for the removal confirmation.
    pub async fn users_to_remove(
        &self,
        principal: &Principal,
        user_ids: Vec<String>,
    ) -> Result<Vec<UserIdentity>> {
        principal.require(Permission::Remove)?;
        self.db
            .run(move |conn| Ok(invitations::find_users(conn, &user_ids)?))
            .await
    }

    /// Deletes the selected users; their links stop working at once.
    pub async fn remove(
        &self,
        principal: &Principal,
        user_ids: Vec<String>,
    ) -> Result<Vec<UserLabel>> {
        principal.require(Permission::Remove)?;
        self.remove_where(principal, move |_| Removal::Selected(user_ids))
            .await
    }

    /// Users who never joined and whose invitation expired more than `days` ago, for
    /// the confirmation: (id, first name, last name, email).
    pub async fn expired_users(
        &self,
        principal: &Principal,
        days: i64,
    ) -> Result<Vec<(String, String, String, String)>> {
        principal.require(Permission::Remove)?;
        let cutoff = self.clock.now() - TimeDelta::days(days);
        self.db
            .run(move |conn| Ok(list::expired_before(conn, cutoff)?))
            .await
    }

    /// Removes everyone whose invitation expired more than `days` ago without joining.
    pub async fn remove_expired(&self, principal: &Principal, days: i64) -> Result<Vec<UserLabel>> {
        principal.require(Permission::Remove)?;
        self.remove_where(principal, move |now| {
            Removal::ExpiredBefore(now - TimeDelta::days(days))
        })
        .await
    }

    async fn remove_where(
        &self,
        principal: &Principal,
        which: impl FnOnce(NaiveDateTime) -> Removal + Send + 'static,
    ) -> Result<Vec<UserLabel>> {
        let removed = self
            .as_change(principal, move |conn, change| {
                invitations::remove(conn, change, which(change.now))
            })
            .await?;
        self.users_changed(&[]);
        self.db.rows_changed(removed.len());
        Ok(removed)
    }

    /// What the link with this token leads to now.
    pub async fn look_up_token(&self, token: Option<&EnrollmentToken>) -> Result<TokenLookup> {
        let hash = token.map(EnrollmentToken::hash);
        let now = self.clock.now();
        self.db
            .run(move |conn| {
                let state = match hash {
                    Some(hash) => invitations::look_up(conn, &hash, now)?,
                    None => TokenState::Unknown,
                };
                let (contact_email, organization) = InvitationSettings::load(conn)?
                    .map(|s| (s.contact_email, s.organization_name))
                    .unwrap_or_default();
                Ok(TokenLookup {
                    state,
                    contact_email,
                    organization,
                })
            })
            .await
    }

    /// "Join organization": consumes the token, once.
    pub async fn enroll(
        &self,
        principal: &Principal,
        token: &EnrollmentToken,
    ) -> Result<EnrollOutcome> {
        let hash = token.hash();
        let outcome = self
            .as_change(principal, move |conn, change| {
                invitations::enroll(conn, change, &hash)
            })
            .await?;
        if matches!(outcome, EnrollOutcome::Enrolled(_)) {
            self.users_changed(&[]);
        }
        Ok(outcome)
    }
}
