//! Users as an identity provider manages them over SCIM: the same invite, remove and
//! permission checks as the console, plus deactivation, reactivation and renaming.

use super::{Error, Operations, Permission, Principal, Result};
use crate::scim::filter::UserFilter;
use crate::scim::user::{UserInput, UserResource};
use crate::settings::InvitationSettings;
use crate::users::NewInvitee;
use crate::users::invitations::QueuedLink;
use crate::users::invitations::provision::{
    self, ProvisionOutcome, ScimChange, ScimUserRow, UpdateOutcome,
};

pub enum ScimCreated {
    Created(Box<UserResource>),
    /// The address belongs to a user already (409 `uniqueness`).
    Taken,
}

pub enum ScimUpdated {
    Updated(Box<UserResource>),
    NotFound,
    /// `If-Match` named another version (412).
    VersionMismatch,
    /// The userName differs from the user's address, which cannot change.
    EmailChanged,
}

/// Where resources are, for `meta.location`: `<public URL>/scim/v2` (a relative path
/// until invitations, and so the public URL, are set up).
fn base_url(settings: Option<&InvitationSettings>) -> String {
    match settings {
        Some(settings) => format!("{}/scim/v2", settings.public_url.trim_end_matches('/')),
        None => "/scim/v2".to_owned(),
    }
}

fn resource(row: &ScimUserRow, now: chrono::NaiveDateTime) -> UserResource {
    let status = row.status(now);
    UserResource {
        id: row.id.clone(),
        email: row.email.clone(),
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        external_id: row.external_id.clone(),
        active: row.deactivated_at.is_none(),
        status_label: status.label(),
        invitation_expires: (row.enrolled_at.is_none() && row.deactivated_at.is_none())
            .then_some(row.expires_at),
        enrolled_at: row.enrolled_at,
        provisioned_by: row.provisioned_by.clone(),
        created: row.created_at,
        last_modified: row.last_modified(),
        version: row.version(now),
    }
}

impl Operations {
    /// Where SCIM resources live, `<public URL>/scim/v2`.
    pub async fn scim_base_url(&self) -> Result<String> {
        Ok(base_url(self.invitation_settings().await?.as_ref()))
    }

    /// A page of users (1-based `start_index`) and how many match in all.
    pub async fn scim_users(
        &self,
        principal: &Principal,
        filter: UserFilter,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<UserResource>)> {
        principal.require(Permission::ViewUsers)?;
        let now = self.clock.now();
        self.db
            .read(move |conn| {
                let (total, rows) = provision::page(conn, &filter, start_index - 1, count)?;
                Ok((total, rows.iter().map(|row| resource(row, now)).collect()))
            })
            .await
    }

    pub async fn scim_user(
        &self,
        principal: &Principal,
        user_id: String,
    ) -> Result<Option<UserResource>> {
        principal.require(Permission::ViewUsers)?;
        let now = self.clock.now();
        self.db
            .read(move |conn| {
                Ok::<_, Error>(provision::find(conn, &user_id)?.map(|row| resource(&row, now)))
            })
            .await
    }

    /// POST /Users: the user and their invitation, exactly as "Send invite" makes them
    /// (a user created with `active: false` gets no email).
    pub async fn scim_create(&self, principal: &Principal, user: UserInput) -> Result<ScimCreated> {
        principal.require(Permission::Invite)?;
        if !user.active {
            principal.require(Permission::Deactivate)?;
        }
        let key = self.mail.key().clone();
        let (outcome, row) = self
            .as_change(principal, move |conn, change| {
                let settings = InvitationSettings::load(conn)?.ok_or(Error::NotSetUp)?;
                let invitee = NewInvitee {
                    first_name: user.first_name,
                    last_name: user.last_name,
                    email: user.email,
                };
                let outcome = provision::provision(
                    conn,
                    change,
                    &settings,
                    &key,
                    &invitee,
                    user.external_id,
                    user.active,
                )?;
                let row = match &outcome {
                    ProvisionOutcome::Created { user_id, .. } => provision::find(conn, user_id)?,
                    ProvisionOutcome::Taken => None,
                };
                Ok::<_, Error>((outcome, row))
            })
            .await?;
        match (outcome, row) {
            (ProvisionOutcome::Created { link, .. }, Some(row)) => {
                self.users_changed(&link.into_iter().collect::<Vec<QueuedLink>>());
                Ok(ScimCreated::Created(Box::new(resource(
                    &row,
                    self.clock.now(),
                ))))
            }
            (ProvisionOutcome::Created { .. }, None) => {
                // Removed between the commit and the read: gone, as a DELETE would leave it.
                self.users_changed(&[]);
                Err(Error::NotFound)
            }
            (ProvisionOutcome::Taken, _) => Ok(ScimCreated::Taken),
        }
    }

    /// PUT (and PATCH, once applied): sets names, `externalId` and `active`.
    /// Deactivating kills every link and cancels queued mail; reactivating sends a
    /// fresh invitation.
    pub async fn scim_update(
        &self,
        principal: &Principal,
        user_id: String,
        desired: UserInput,
        if_match: Option<String>,
    ) -> Result<ScimUpdated> {
        principal.require(Permission::Invite)?;
        principal.require(Permission::Deactivate)?;
        let key = self.mail.key().clone();
        let (outcome, row) = self
            .as_change(principal, move |conn, change| {
                let reactivation = if desired.active {
                    match InvitationSettings::load(conn)? {
                        Some(settings) => provision::prepare_reactivation(
                            conn, change, &settings, &key, &user_id,
                        )?,
                        None => None,
                    }
                } else {
                    None
                };
                let wanted = ScimChange {
                    email: desired.email,
                    first_name: desired.first_name,
                    last_name: desired.last_name,
                    external_id: desired.external_id,
                    active: desired.active,
                };
                let outcome = provision::update(
                    conn,
                    change,
                    &user_id,
                    &wanted,
                    if_match.as_deref(),
                    reactivation,
                )?;
                let row = provision::find(conn, &user_id)?;
                Ok::<_, Error>((outcome, row))
            })
            .await?;
        Ok(match outcome {
            UpdateOutcome::Updated { link } => {
                self.users_changed(&link.into_iter().collect::<Vec<QueuedLink>>());
                match row {
                    Some(row) => ScimUpdated::Updated(Box::new(resource(&row, self.clock.now()))),
                    None => ScimUpdated::NotFound,
                }
            }
            UpdateOutcome::NotFound => ScimUpdated::NotFound,
            UpdateOutcome::VersionMismatch => ScimUpdated::VersionMismatch,
            UpdateOutcome::EmailChanged => ScimUpdated::EmailChanged,
        })
    }

    /// DELETE: "Remove user". Whether there was such a user.
    pub async fn scim_delete(&self, principal: &Principal, user_id: String) -> Result<bool> {
        Ok(!self.remove(principal, vec![user_id]).await?.is_empty())
    }
}
