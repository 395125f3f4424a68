//! Console accounts: the first administrator, adding and changing accounts, signing in
//! and out.

use secrecy::SecretString;

use super::{Error, Operations, Permission, Principal, Result};
use crate::accounts::{
    self, AccountChangeError, AccountRow, CreateAccountError, NewPassword, Role, setup_code,
};
use crate::audit::{self, Action, NewAuditEvent};
use crate::db::{DbConnection, write_transaction};
use crate::principal::PrincipalKind;
use crate::users::invitations::{self, Change};
use crate::values::EmailAddress;

/// The outcome of a sign-in attempt.
pub enum SignIn {
    /// Signed in with the password alone.
    SignedIn(AccountRow),
    /// The password was right; a second step remains (a code, or setting two-factor up).
    Pending(super::PendingSignIn, String),
    /// Single sign-on is the only way in for this address.
    SingleSignOnOnly,
    /// Wrong password, unknown address or disabled account: the same to the visitor.
    Refused,
    /// Every password-hashing slot is taken (a flood, most likely): not tried at all.
    Busy,
}

pub enum AccountAdded {
    Added,
    AlreadyExists,
}

/// The outcome of a change to an account.
pub enum AccountChange {
    /// Done; the account as it was before the change.
    Done(AccountRow),
    /// Refused, with the reason for the person who asked (the last administrator).
    Refused(String),
}

/// Creates an account with its audit entry, in the caller's transaction; the one acting
/// may be the new account itself (the setup page), hence `actor` gets its id.
fn create_account(
    conn: &mut DbConnection,
    now: chrono::NaiveDateTime,
    actor: impl FnOnce(&str) -> Principal,
    email: &EmailAddress,
    password_hash: &str,
    role: Role,
    detail: String,
) -> Result<(Option<String>, AccountAdded)> {
    let id = match accounts::create(conn, now, email, password_hash, role) {
        Ok(id) => id,
        Err(CreateAccountError::AlreadyExists) => return Ok((None, AccountAdded::AlreadyExists)),
        Err(CreateAccountError::Database(e)) => return Err(e.into()),
    };
    // A setup code is for a console without accounts.
    setup_code::clear(conn)?;
    audit::record(
        conn,
        &[NewAuditEvent::new(
            now,
            &actor(&id).actor(),
            Action::AccountAdd,
            Some(email.as_str()),
            detail,
        )],
    )?;
    Ok((Some(id), AccountAdded::Added))
}

impl Operations {
    /// Argon2 takes tens of milliseconds of CPU: never on the async threads, nor on the
    /// pool the database calls use.
    async fn hash_password(&self, password: NewPassword) -> Result<String> {
        let slot = self.hashing.slot().await?;
        slot.run(move || password.hash())
            .await?
            .map_err(Error::Unexpected)
    }

    /// Whether any console account exists (the setup page is closed once one does).
    pub async fn console_is_set_up(&self) -> Result<bool> {
        self.db.run(|conn| Ok(accounts::any_exist(conn)?)).await
    }

    /// While no console account exists, a new one-time code for the setup page.
    pub async fn issue_setup_code(&self) -> Result<Option<String>> {
        let now = self.clock.now();
        self.db
            .run(move |conn| {
                if accounts::any_exist(conn)? {
                    return Ok(None);
                }
                Ok(Some(setup_code::issue(conn, now)?))
            })
            .await
    }

    pub async fn setup_code_is_valid(&self, code: String) -> Result<bool> {
        let now = self.clock.now();
        self.db
            .run(move |conn| Ok(setup_code::is_valid(conn, &code, now)?))
            .await
    }

    /// The setup page: exchanges a live setup code for the first administrator. Returns
    /// the new account's id; none when the code was used meanwhile or an account exists.
    pub async fn set_up_first_administrator(
        &self,
        principal: &Principal,
        code: String,
        email: EmailAddress,
        password: NewPassword,
    ) -> Result<Option<String>> {
        let hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let client_ip = principal.client_ip.clone();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    // Of simultaneous set-ups with one code, exactly one consumes it: on
                    // PostgreSQL the others wait for its row lock, then find it gone.
                    if !setup_code::consume(conn, &code, now)? || accounts::any_exist(conn)? {
                        return Ok(None);
                    }
                    let (id, _) = create_account(
                        conn,
                        now,
                        |id| Principal::account(id, email.as_str(), Role::Administrator, client_ip),
                        &email,
                        &hash,
                        Role::Administrator,
                        "first administrator, from the setup page".to_owned(),
                    )?;
                    Ok(id)
                })
            })
            .await
    }

    /// Checks an address and password. Every attempt is audited; a failed one names the
    /// address only when an account has it (what is typed may be someone's password).
    /// An account with two-factor (or required to set it up) is not signed in yet: the
    /// outcome then carries the sealed half-done sign-in for the second step.
    pub async fn sign_in(
        &self,
        client_ip: Option<String>,
        email_key: String,
        password: SecretString,
    ) -> Result<SignIn> {
        let sso_only = self.sign_in.oidc.as_ref().filter(|oidc| oidc.only());
        if let Some(oidc) = sso_only
            && !oidc.is_break_glass(&email_key)
        {
            let event = NewAuditEvent::new(
                self.clock.now(),
                &Principal::anonymous(client_ip).actor(),
                Action::SignInFailed,
                None,
                "password sign-in refused: single sign-on is the only way in",
            );
            self.db
                .run(move |conn| Ok::<_, Error>(audit::record(conn, &[event])?))
                .await?;
            return Ok(SignIn::SingleSignOnOnly);
        }
        // Taken before anything else, so that a refused attempt costs no database work.
        let Some(slot) = self.hashing.try_slot() else {
            return Ok(SignIn::Busy);
        };
        let (account, two_factor_required) = self
            .db
            .run(move |conn| {
                Ok::<_, Error>((
                    accounts::find_by_email(conn, &email_key)?,
                    crate::two_factor::required(conn)?,
                ))
            })
            .await?;
        let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
        let password_ok = slot
            .run(move || accounts::verify_password(&password, stored_hash.as_deref()))
            .await?;
        let now = self.clock.now();
        // Break-glass accounts of a single-sign-on-only console are administrators.
        let allowed = |account: &AccountRow| {
            account.is_active() && (sso_only.is_none() || account.role().is_administrator())
        };
        let (event, outcome) = match account {
            Some(account) if password_ok && allowed(&account) => {
                let stage = if account.has_two_factor() {
                    Some(super::PendingStage::Code)
                } else if two_factor_required {
                    Some(super::PendingStage::SetUp)
                } else {
                    None
                };
                if let Some(stage) = stage {
                    // Audited once the second step is done (or failed).
                    let token = self.pending_token(&account, stage);
                    let pending = self.pending_sign_in(&token).ok_or_else(|| {
                        Error::Unexpected(anyhow::anyhow!("cannot seal a sign-in"))
                    })?;
                    return Ok(SignIn::Pending(pending, token));
                }
                let principal =
                    Principal::account(&account.id, &account.email, account.role(), client_ip);
                let event =
                    NewAuditEvent::new(now, &principal.actor(), Action::SignIn, None, "password");
                (event, SignIn::SignedIn(account))
            }
            known => {
                let detail = if known.is_some() {
                    "wrong password, or account disabled"
                } else {
                    "no account with the address typed"
                };
                let event = NewAuditEvent::new(
                    now,
                    &Principal::anonymous(client_ip).actor(),
                    Action::SignInFailed,
                    known.as_ref().map(|a| a.email.as_str()),
                    detail,
                );
                (event, SignIn::Refused)
            }
        };
        self.db
            .run(move |conn| Ok::<_, Error>(audit::record(conn, &[event])?))
            .await?;
        Ok(outcome)
    }

    pub async fn sign_out(&self, principal: &Principal) -> Result<()> {
        let event = NewAuditEvent::new(
            self.clock.now(),
            &principal.actor(),
            Action::SignOut,
            None,
            "",
        );
        self.db
            .run(move |conn| Ok(audit::record(conn, &[event])?))
            .await
    }

    pub async fn accounts(&self, principal: &Principal) -> Result<Vec<AccountRow>> {
        principal.require(Permission::ManageAccounts)?;
        self.db.run(|conn| Ok(accounts::list(conn)?)).await
    }

    pub async fn account(&self, principal: &Principal, id: String) -> Result<AccountRow> {
        principal.require(Permission::ManageAccounts)?;
        self.db
            .run(move |conn| accounts::find(conn, &id)?.ok_or(Error::NotFound))
            .await
    }

    /// Live invitations this account sent to people who have not joined: what
    /// disabling it can revoke.
    pub async fn pending_invitations_sent_by(
        &self,
        principal: &Principal,
        account_id: String,
    ) -> Result<usize> {
        principal.require(Permission::ManageAccounts)?;
        let now = self.clock.now();
        self.db
            .run(move |conn| {
                Ok(invitations::count_pending_issued_by(
                    conn,
                    &account_id,
                    now,
                )?)
            })
            .await
    }

    /// Adds a console account (from the console, or the server's command line).
    pub async fn add_account(
        &self,
        principal: &Principal,
        email: EmailAddress,
        role: Role,
        password: NewPassword,
    ) -> Result<AccountAdded> {
        principal.require(Permission::ManageAccounts)?;
        let hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let actor = principal.clone();
        let detail = match principal.kind {
            PrincipalKind::CommandLine => format!("{}, from the command line", role.label()),
            _ => role.label().to_owned(),
        };
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let (_, added) =
                        create_account(conn, now, |_| actor, &email, &hash, role, detail)?;
                    Ok(added)
                })
            })
            .await
    }

    pub async fn change_role(
        &self,
        principal: &Principal,
        account_id: String,
        role: Role,
    ) -> Result<AccountChange> {
        self.change_account(principal, move |conn, _| {
            let before = accounts::change_role(conn, &account_id, role)?;
            let detail = format!(
                "role changed from {} to {}",
                before.role().label(),
                role.label()
            );
            Ok((before, detail))
        })
        .await
    }

    /// Sets a new password and ends every session of the account.
    pub async fn reset_password(
        &self,
        principal: &Principal,
        account_id: String,
        password: NewPassword,
    ) -> Result<AccountChange> {
        principal.require(Permission::ManageAccounts)?;
        let hash = self.hash_password(password).await?;
        self.change_account(principal, move |conn, _| {
            let account = accounts::reset_password(conn, &account_id, &hash)?;
            Ok((account, "password reset; its sessions ended".to_owned()))
        })
        .await
    }

    /// Disables an account and ends its sessions everywhere; with `revoke_invitations`,
    /// the invitations it sent that are still pending stop working too.
    pub async fn disable_account(
        &self,
        principal: &Principal,
        account_id: String,
        revoke_invitations: bool,
    ) -> Result<AccountChange> {
        let change = self
            .change_account(principal, move |conn, change| {
                let account = accounts::disable(conn, &account_id, change.now)?;
                if !revoke_invitations {
                    return Ok((account, "disabled; its sessions ended".to_owned()));
                }
                let revoked = invitations::revoke_issued_by(conn, change, &account_id)?;
                let detail = format!(
                    "disabled; its sessions ended; {revoked} pending invitation(s) it sent revoked"
                );
                Ok((account, detail))
            })
            .await?;
        if matches!(change, AccountChange::Done(_)) {
            self.users_changed(&[]);
        }
        Ok(change)
    }

    pub async fn enable_account(
        &self,
        principal: &Principal,
        account_id: String,
    ) -> Result<AccountChange> {
        self.change_account(principal, move |conn, _| {
            Ok((accounts::enable(conn, &account_id)?, "enabled".to_owned()))
        })
        .await
    }

    /// Runs an account change with its audit entry in one transaction.
    pub(super) async fn change_account(
        &self,
        principal: &Principal,
        change: impl FnOnce(
            &mut DbConnection,
            &Change<'_>,
        ) -> std::result::Result<(AccountRow, String), AccountChangeError>
        + Send
        + 'static,
    ) -> Result<AccountChange> {
        principal.require(Permission::ManageAccounts)?;
        let now = self.clock.now();
        let actor = principal.actor();
        let sessions = self.sessions.clone();
        self.db
            .run(move |conn| {
                let result = write_transaction(conn, |conn| {
                    let (account, detail) = change(conn, &Change { now, actor: &actor })?;
                    audit::record(
                        conn,
                        &[NewAuditEvent::new(
                            now,
                            &actor,
                            Action::AccountChange,
                            Some(&account.email),
                            detail,
                        )],
                    )?;
                    Ok(account)
                });
                // Committed (or not): sessions this instance remembers may have ended.
                sessions.forget_all();
                match result {
                    Ok(account) => Ok(AccountChange::Done(account)),
                    Err(AccountChangeError::NotFound) => Err(Error::NotFound),
                    Err(AccountChangeError::Database(e)) => Err(e.into()),
                    Err(refused @ AccountChangeError::LastAdministrator) => {
                        Ok(AccountChange::Refused(refused.to_string()))
                    }
                }
            })
            .await
    }
}
