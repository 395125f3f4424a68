//! Who acts through a front door, and what their role lets them do. Every operation of
//! the domain takes one and checks it: hiding a button is not enforcement, and a second
//! front door (an API) must not be able to do more than the console.

use crate::accounts::Role;
use crate::audit::Actor;
use crate::credentials::CredentialKind;
use crate::error::Error;

/// Something a principal may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The Users page, searches, a user's history.
    ViewUsers,
    Resend,
    Invite,
    Remove,
    Export,
    ManageSettings,
    ManageAccounts,
    ViewAudit,
    /// The API access page: make and revoke machine credentials.
    ManageCredentials,
    /// Deactivate and reactivate users (what identity providers do over SCIM).
    Deactivate,
}

impl Role {
    pub fn allows(self, permission: Permission) -> bool {
        match self {
            Self::Administrator => true,
            Self::Helpdesk => matches!(permission, Permission::ViewUsers | Permission::Resend),
        }
    }
}

/// Who is acting, and from where.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone)]
pub enum PrincipalKind {
    /// A signed-in console account.
    Account {
        id: String,
        email: String,
        role: Role,
    },
    /// Someone without an account: an invitee joining, a visitor signing in.
    Anonymous,
    /// The server's own command line, run by whoever operates it.
    CommandLine,
    /// A machine credential (API.md "Credentials"): a SCIM token acts as an
    /// administrator for provisioning, an access key with its role. Neither manages
    /// accounts, credentials or reads the audit log: those stay with people; an
    /// administrator's access key may change the invitation set-up, as the API does.
    Credential {
        id: String,
        name: String,
        kind: CredentialKind,
        role: Role,
    },
}

impl Principal {
    pub fn account(id: &str, email: &str, role: Role, client_ip: Option<String>) -> Self {
        Self {
            kind: PrincipalKind::Account {
                id: id.to_owned(),
                email: email.to_owned(),
                role,
            },
            client_ip,
        }
    }

    pub fn anonymous(client_ip: Option<String>) -> Self {
        Self {
            kind: PrincipalKind::Anonymous,
            client_ip,
        }
    }

    pub fn command_line() -> Self {
        Self {
            kind: PrincipalKind::CommandLine,
            client_ip: None,
        }
    }

    pub fn credential(
        id: &str,
        name: &str,
        kind: CredentialKind,
        role: Role,
        client_ip: Option<String>,
    ) -> Self {
        Self {
            kind: PrincipalKind::Credential {
                id: id.to_owned(),
                name: name.to_owned(),
                kind,
                role,
            },
            client_ip,
        }
    }

    /// Refuses what this principal's role does not allow.
    pub fn require(&self, permission: Permission) -> Result<(), Error> {
        let allowed = match &self.kind {
            PrincipalKind::Account { role, .. } => role.allows(permission),
            PrincipalKind::Credential { role, kind, .. } => {
                role.allows(permission)
                    && (matches!(
                        permission,
                        Permission::ViewUsers
                            | Permission::Resend
                            | Permission::Invite
                            | Permission::Remove
                            | Permission::Deactivate
                    )
                    // The Alexa for Business API reads and writes the invitation set-up
                    // (Get/PutInvitationConfiguration); SCIM never does.
                    || (*kind == CredentialKind::AccessKey
                        && permission == Permission::ManageSettings))
            }
            PrincipalKind::CommandLine => true,
            PrincipalKind::Anonymous => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    pub fn account_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Account { id, .. } => Some(id),
            _ => None,
        }
    }

    /// How the audit log names this principal.
    pub fn actor(&self) -> Actor {
        match &self.kind {
            PrincipalKind::Account { id, email, .. } => {
                Actor::account(id, email, self.client_ip.clone())
            }
            PrincipalKind::Anonymous => Actor::anonymous(self.client_ip.clone()),
            PrincipalKind::CommandLine => Actor::command_line(),
            PrincipalKind::Credential { id, name, kind, .. } => Actor::credential(
                id,
                &format!("{}: {name}", kind.actor_prefix()),
                name,
                self.client_ip.clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_desk_may_view_and_resend_only() {
        let help_desk = Principal::account("a", "h@example.com", Role::Helpdesk, None);
        assert!(help_desk.require(Permission::ViewUsers).is_ok());
        assert!(help_desk.require(Permission::Resend).is_ok());
        for refused in [
            Permission::Invite,
            Permission::Remove,
            Permission::Export,
            Permission::ManageSettings,
            Permission::ManageAccounts,
            Permission::ViewAudit,
            Permission::ManageCredentials,
            Permission::Deactivate,
        ] {
            assert!(matches!(help_desk.require(refused), Err(Error::Forbidden)));
        }
        assert!(matches!(
            Principal::anonymous(None).require(Permission::ViewUsers),
            Err(Error::Forbidden)
        ));
    }

    #[test]
    fn credentials_act_with_their_role_on_users_only() {
        let scim =
            Principal::credential("c", "Okta", CredentialKind::Scim, Role::Administrator, None);
        for allowed in [
            Permission::ViewUsers,
            Permission::Invite,
            Permission::Remove,
            Permission::Deactivate,
        ] {
            assert!(scim.require(allowed).is_ok());
        }
        for refused in [
            Permission::ManageSettings,
            Permission::ManageAccounts,
            Permission::ManageCredentials,
            Permission::ViewAudit,
            Permission::Export,
        ] {
            assert!(matches!(scim.require(refused), Err(Error::Forbidden)));
        }
        assert_eq!(scim.actor().email.as_deref(), Some("SCIM: Okta"));
        let key = Principal::credential(
            "k",
            "onboarding script",
            CredentialKind::AccessKey,
            Role::Helpdesk,
            None,
        );
        assert!(key.require(Permission::Resend).is_ok());
        assert!(matches!(
            key.require(Permission::Invite),
            Err(Error::Forbidden)
        ));
        assert_eq!(
            key.actor().email.as_deref(),
            Some("access key: onboarding script")
        );
    }
}
