//! What the Alexa for Business API adds to the console's operations: users made without
//! an invitation, one user's invitation revoked, tags, the API's search, and the
//! invitation set-up as that API reads and writes it. Each checks its permission and
//! runs its own transaction with its audit entry, as every operation does.

use std::sync::Arc;

use super::{Operations, Permission, Principal, Result};
use crate::settings::{InvitationSettings, SettingsInput};
use crate::shared_for_a_moment::SharedForAMoment;
use crate::users::api_search::{self, BadToken, Results, Search};
use crate::users::invitations::{self, CreateOutcome, RevokeOutcome, UninvitedUser};
use crate::users::tags::{self, Tag};

/// What PutInvitationConfiguration changes; everything else stays as set up.
pub struct InvitationConfiguration {
    pub organization_name: String,
    pub contact_email: Option<String>,
}

/// Why the invitation set-up could not be changed.
pub enum ConfigurationChange {
    Saved,
    NotSetUp,
    /// The console's rules refused a value: (field, message).
    Refused(&'static str, String),
}

impl Operations {
    /// Makes a user without inviting them (shown as Not invited); sending them an
    /// invitation later is a resend.
    pub async fn create_uninvited(
        &self,
        principal: &Principal,
        user: UninvitedUser,
    ) -> Result<CreateOutcome> {
        principal.require(Permission::Invite)?;
        let outcome = self
            .as_change(principal, move |conn, change| {
                invitations::create_uninvited(conn, change, &user)
            })
            .await?;
        if matches!(outcome, CreateOutcome::Created { .. }) {
            self.users_changed(&[]);
        }
        Ok(outcome)
    }

    /// Ends one user's open invitation now (the link stops working; the user stays).
    pub async fn revoke_invitation(
        &self,
        principal: &Principal,
        user_id: String,
    ) -> Result<RevokeOutcome> {
        principal.require(Permission::Remove)?;
        let outcome = self
            .as_change(principal, move |conn, change| {
                invitations::revoke(conn, change, &user_id)
            })
            .await?;
        if outcome == RevokeOutcome::Revoked {
            self.users_changed(&[]);
        }
        Ok(outcome)
    }

    /// Adds or replaces tags and removes others. `None`: no such user; `Some(false)`:
    /// too many tags, nothing changed.
    pub async fn change_tags(
        &self,
        principal: &Principal,
        user_id: String,
        add: Vec<Tag>,
        remove: Vec<String>,
    ) -> Result<Option<bool>> {
        principal.require(Permission::Invite)?;
        self.as_change(principal, move |conn, change| {
            invitations::change_tags(conn, change, &user_id, &add, &remove)
        })
        .await
    }

    /// A user's tags through the API, `None` when there is no such user. Managing tags
    /// is an administrator's; the help desk sees them on the user's page.
    pub async fn tags_of(
        &self,
        principal: &Principal,
        user_id: String,
    ) -> Result<Option<Vec<Tag>>> {
        principal.require(Permission::Invite)?;
        self.db
            .read(move |conn| {
                if invitations::find_users(conn, std::slice::from_ref(&user_id))?.is_empty() {
                    return Ok(None);
                }
                Ok(Some(tags::of_user(conn, &user_id)?))
            })
            .await
    }

    /// Whether this user exists (the API names users by id).
    pub async fn user_exists(&self, principal: &Principal, user_id: String) -> Result<bool> {
        principal.require(Permission::ViewUsers)?;
        self.db
            .read(move |conn| {
                Ok(!invitations::find_users(conn, std::slice::from_ref(&user_id))?.is_empty())
            })
            .await
    }

    /// One page of the API's SearchUsers. The same page asked for again within a
    /// moment (as long as the Users page shares its rendered tables) is shared, written
    /// answer included: a change made through this instance clears it at once.
    pub async fn search_users(
        &self,
        principal: &Principal,
        search: Search,
    ) -> Result<std::result::Result<Arc<Results>, BadToken>> {
        principal.require(Permission::ViewUsers)?;
        let key = api_search::cache_key(&search);
        let now = self.clock.now();
        let filtered = !search.filters.is_empty();
        let searched = self
            .api_searches
            .get_or_make(key, self.generation(), now, || async move {
                // The counts the Users page shows (a few seconds old at most) give
                // TotalCount without counting every user on each request.
                let known_total = if search.next_token.is_none() {
                    let counts = self.counts.get(&self.db, &self.clock).await?;
                    api_search::total_from_counts(&search, &counts)
                } else {
                    None
                };
                // Filtered, it is a search like the Users page's: admitted among the
                // expensive reads, under their deadline.
                let work = move |conn: &mut crate::db::DbConnection| {
                    Ok::<_, super::Error>(api_search::search(conn, &search, now, known_total)?)
                };
                let results = if filtered {
                    self.db.expensive_read(work).await?
                } else {
                    self.db.read(work).await?
                };
                // A bad token is an answer too, but not one to share: return it apart.
                results.map_err(SearchRefused::BadToken)
            })
            .await;
        match searched {
            Ok(results) => Ok(Ok(results)),
            Err(SearchRefused::BadToken(bad)) => Ok(Err(bad)),
            Err(SearchRefused::Failed(error)) => Err(error),
        }
    }

    /// The invitation set-up, for administrators; `None` before it is done.
    pub async fn invitation_configuration(
        &self,
        principal: &Principal,
    ) -> Result<Option<InvitationSettings>> {
        principal.require(Permission::ManageSettings)?;
        self.invitation_settings().await
    }

    /// Changes the organization name and contact address of the set-up, through the
    /// console's own rules and its save (with its audit entry).
    pub async fn put_invitation_configuration(
        &self,
        principal: &Principal,
        change: InvitationConfiguration,
    ) -> Result<ConfigurationChange> {
        principal.require(Permission::ManageSettings)?;
        let Some(current) = self.invitation_settings().await? else {
            return Ok(ConfigurationChange::NotSetUp);
        };
        let mut input = SettingsInput::from(&current);
        input.organization_name = change.organization_name;
        if let Some(contact) = change.contact_email {
            input.contact_email = contact;
        }
        let settings = match InvitationSettings::parse(&input) {
            Ok(settings) => settings,
            Err(errors) => {
                let refused = match (errors.organization_name, errors.contact_email) {
                    (Some(message), _) => ("OrganizationName", message),
                    (_, Some(message)) => ("ContactEmail", message),
                    // The other fields are as saved; the rules may have changed since.
                    _ => (
                        "InvitationConfiguration",
                        "The saved set-up does not pass its checks any more: correct it on \
                         the console's settings page."
                            .to_owned(),
                    ),
                };
                return Ok(ConfigurationChange::Refused(refused.0, refused.1));
            }
        };
        self.save_settings(principal, settings).await?;
        Ok(ConfigurationChange::Saved)
    }
}

/// Why a page of SearchUsers was not made.
enum SearchRefused {
    BadToken(BadToken),
    Failed(super::Error),
}

impl From<super::Error> for SearchRefused {
    fn from(error: super::Error) -> Self {
        Self::Failed(error)
    }
}

/// Pages of SearchUsers shared for a moment by identical requests, as long as the Users
/// page shares its tables (`ENROLL_USERS_PAGE_CACHE_MS`).
pub type SearchCache = SharedForAMoment<Results>;

/// Pages kept at most.
pub const SEARCHES_KEPT: usize = 256;
