//! "Set up user invitations".

use super::{Operations, Permission, Principal, Result};
use crate::audit::{self, Action, NewAuditEvent};
use crate::db::write_transaction;
use crate::settings::InvitationSettings;

impl Operations {
    /// The saved invitation settings, if invitations are set up.
    pub async fn invitation_settings(&self) -> Result<Option<InvitationSettings>> {
        self.db
            .read(|conn| Ok(InvitationSettings::load(conn)?))
            .await
    }

    /// Saves the settings with an audit entry naming what changed. Returns whether this
    /// was the first time (invitations are now set up).
    pub async fn save_settings(
        &self,
        principal: &Principal,
        settings: InvitationSettings,
    ) -> Result<bool> {
        principal.require(Permission::ManageSettings)?;
        let now = self.clock.now();
        let actor = principal.actor();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let before = InvitationSettings::load(conn)?;
                    settings.save(conn, now, actor.account_id.as_deref())?;
                    let detail = InvitationSettings::describe_changes(before.as_ref(), &settings);
                    audit::record(
                        conn,
                        &[NewAuditEvent::new(
                            now,
                            &actor,
                            Action::SettingsChange,
                            None,
                            detail,
                        )],
                    )?;
                    Ok(before.is_none())
                })
            })
            .await
    }
}
