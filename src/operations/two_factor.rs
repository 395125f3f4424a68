//! Two-factor sign-in: the second step after a password, setting it up (from the
//! account's own page, or at sign-in when it is required), and what administrators do
//! about it (require it, reset another account's).

use serde::{Deserialize, Serialize};

use super::{AccountChange, Error, Operations, Permission, Principal, Result};
use crate::accounts::{self, AccountRow, Role};
use crate::audit::{self, Action, NewAuditEvent};
use crate::db::write_transaction;
use crate::two_factor::{self, TotpSecret, TypedCode};

/// How long a password stays good for the second step.
const PENDING_SECONDS: i64 = 300;
/// The seal of a half-done sign-in names its purpose, so no other sealed value passes.
const PENDING_PURPOSE: &str = "pending-sign-in";
const SETUP_PURPOSE: &str = "two-factor-setup";

/// What the password step left to do before the account is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingStage {
    /// Type a code from the authenticator app (or a recovery code).
    Code,
    /// Two-factor is required and this account has none yet: set it up first.
    SetUp,
}

/// A sign-in whose password was right, waiting for its second step. It grants nothing:
/// the browser holds it sealed ([`PendingSignIn::token`]), apart from the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub account_id: String,
    pub email: String,
    pub stage: PendingStage,
    expires: i64,
}

/// A TOTP secret being set up: shown as text and QR code, carried sealed in the form
/// until a first code confirms it.
pub struct TwoFactorSetup {
    pub secret_base32: String,
    pub qr_svg: String,
    pub sealed: String,
}

pub enum SecondFactor {
    SignedIn(AccountRow),
    Refused,
}

pub enum TurnOn {
    /// On; the recovery codes, to be shown once.
    On {
        account: AccountRow,
        recovery_codes: Vec<String>,
    },
    WrongCode,
}

impl Operations {
    /// The half-done sign-in the browser holds, while it is fresh and untouched.
    pub fn pending_sign_in(&self, token: &str) -> Option<PendingSignIn> {
        let plain = self.sign_in.sealer.open(PENDING_PURPOSE, token)?;
        let pending: PendingSignIn = serde_json::from_slice(&plain).ok()?;
        (pending.expires > self.clock.now().and_utc().timestamp()).then_some(pending)
    }

    pub(super) fn pending_token(&self, account: &AccountRow, stage: PendingStage) -> String {
        let pending = PendingSignIn {
            account_id: account.id.clone(),
            email: account.email.clone(),
            stage,
            expires: self.clock.now().and_utc().timestamp() + PENDING_SECONDS,
        };
        let plain = serde_json::to_vec(&pending).unwrap_or_default();
        self.sign_in.sealer.seal(PENDING_PURPOSE, &plain)
    }

    /// A new secret for `account_email` to set up.
    pub fn new_two_factor_setup(&self, account_id: &str, account_email: &str) -> TwoFactorSetup {
        self.show_setup(account_id, account_email, TotpSecret::generate())
    }

    /// The secret of a setup form sent back (a mistyped code shows the same one again).
    pub fn reopen_two_factor_setup(
        &self,
        account_id: &str,
        account_email: &str,
        sealed: &str,
    ) -> Option<TwoFactorSetup> {
        let secret = self.open_setup(account_id, sealed)?;
        Some(self.show_setup(account_id, account_email, secret))
    }

    fn open_setup(&self, account_id: &str, sealed: &str) -> Option<TotpSecret> {
        TotpSecret::open(
            &self.sign_in.sealer,
            &format!("{SETUP_PURPOSE}:{account_id}"),
            sealed,
        )
    }

    fn show_setup(&self, account_id: &str, email: &str, secret: TotpSecret) -> TwoFactorSetup {
        let issuer = self.sign_in.issuer_label.as_str();
        TwoFactorSetup {
            secret_base32: secret.base32(),
            qr_svg: secret.qr_svg(issuer, email).unwrap_or_default(),
            sealed: secret.seal(
                &self.sign_in.sealer,
                &format!("{SETUP_PURPOSE}:{account_id}"),
            ),
        }
    }

    /// The account's own page: turns two-factor on once a first code confirms the secret.
    pub async fn turn_on_two_factor(
        &self,
        principal: &Principal,
        sealed_setup: String,
        code: String,
    ) -> Result<TurnOn> {
        let account_id = principal.account_id().ok_or(Error::Forbidden)?.to_owned();
        self.confirm_setup(principal.clone(), account_id, sealed_setup, code, false)
            .await
    }

    /// The sign-in step of an account that must set up two-factor: turns it on and signs
    /// in, in one transaction with both audit entries.
    pub async fn set_up_two_factor_at_sign_in(
        &self,
        client_ip: Option<String>,
        pending: &PendingSignIn,
        sealed_setup: String,
        code: String,
    ) -> Result<TurnOn> {
        if pending.stage != PendingStage::SetUp {
            return Err(Error::Forbidden);
        }
        let principal = Principal::account(
            &pending.account_id,
            &pending.email,
            Role::Helpdesk,
            client_ip,
        );
        self.confirm_setup(
            principal,
            pending.account_id.clone(),
            sealed_setup,
            code,
            true,
        )
        .await
    }

    async fn confirm_setup(
        &self,
        principal: Principal,
        account_id: String,
        sealed_setup: String,
        code: String,
        signs_in: bool,
    ) -> Result<TurnOn> {
        let Some(secret) = self.open_setup(&account_id, &sealed_setup) else {
            return Ok(TurnOn::WrongCode);
        };
        let now = self.clock.now();
        let TypedCode::Totp(code) = TypedCode::parse(&code) else {
            return Ok(TurnOn::WrongCode);
        };
        let Some(step) = secret.matching_step(&code, now.and_utc().timestamp().unsigned_abs())
        else {
            return Ok(TurnOn::WrongCode);
        };
        let sealed = secret.seal(&self.sign_in.sealer, &account_id);
        let codes = two_factor::new_recovery_codes();
        let actor = principal.actor();
        let stored_codes = codes.clone();
        let account = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let account = accounts::find(conn, &account_id)?
                        .filter(|a| a.is_active() && a.has_password())
                        .ok_or(Error::Forbidden)?;
                    two_factor::enable(conn, now, &account_id, &sealed, step, &stored_codes)?;
                    let mut events = vec![NewAuditEvent::new(
                        now,
                        &actor,
                        Action::AccountChange,
                        Some(&account.email),
                        "two-factor sign-in turned on; 10 recovery codes issued",
                    )];
                    if signs_in {
                        events.push(NewAuditEvent::new(
                            now,
                            &actor,
                            Action::SignIn,
                            None,
                            "password and second factor (set up at sign-in)",
                        ));
                    }
                    audit::record(conn, &events)?;
                    Ok::<_, Error>(account)
                })
            })
            .await?;
        Ok(TurnOn::On {
            account,
            recovery_codes: codes,
        })
    }

    /// The second step of a password sign-in: a code from the authenticator app, not used
    /// before, or an unused recovery code.
    pub async fn verify_second_factor(
        &self,
        client_ip: Option<String>,
        pending: &PendingSignIn,
        code: String,
    ) -> Result<SecondFactor> {
        if pending.stage != PendingStage::Code {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let sealer = self.sign_in.sealer.clone();
        let account_id = pending.account_id.clone();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let account = accounts::find(conn, &account_id)?;
                    let usable = account
                        .as_ref()
                        .filter(|a| a.is_active())
                        .and_then(|a| Some((a, a.totp_secret.as_deref()?)))
                        .and_then(|(a, sealed)| {
                            Some((a, TotpSecret::open(&sealer, &a.id, sealed)?))
                        });
                    let Some((account, secret)) = usable else {
                        return Ok(SecondFactor::Refused);
                    };
                    let method = match TypedCode::parse(&code) {
                        TypedCode::Totp(code) => {
                            match secret
                                .matching_step(&code, now.and_utc().timestamp().unsigned_abs())
                            {
                                Some(step) if two_factor::use_step(conn, &account.id, step)? => {
                                    Some("password and second factor".to_owned())
                                }
                                _ => None,
                            }
                        }
                        TypedCode::Recovery(code) => {
                            two_factor::use_recovery_code(conn, now, &account.id, &code)?
                                .map(|left| format!("password and recovery code ({left} left)"))
                        }
                    };
                    let event = match &method {
                        Some(method) => {
                            let principal = Principal::account(
                                &account.id,
                                &account.email,
                                account.role(),
                                client_ip,
                            );
                            NewAuditEvent::new(
                                now,
                                &principal.actor(),
                                Action::SignIn,
                                None,
                                method,
                            )
                        }
                        None => NewAuditEvent::new(
                            now,
                            &Principal::anonymous(client_ip).actor(),
                            Action::SignInFailed,
                            Some(&account.email),
                            "wrong, expired or already used second-factor code",
                        ),
                    };
                    audit::record(conn, &[event])?;
                    Ok::<_, Error>(match method {
                        Some(_) => SecondFactor::SignedIn(account.clone()),
                        None => SecondFactor::Refused,
                    })
                })
            })
            .await
    }

    /// An administrator turns another account's two-factor off (a lost phone); it sets it
    /// up again at its next sign-in if two-factor is required.
    pub async fn reset_two_factor(
        &self,
        principal: &Principal,
        account_id: String,
    ) -> Result<AccountChange> {
        self.change_account(principal, move |conn, _| {
            let account =
                accounts::find(conn, &account_id)?.ok_or(accounts::AccountChangeError::NotFound)?;
            let was_on = two_factor::disable(conn, &account_id)?;
            let detail = if was_on {
                "two-factor sign-in reset; recovery codes deleted"
            } else {
                "two-factor sign-in reset (it was not on)"
            };
            Ok((account, detail.to_owned()))
        })
        .await
    }

    pub async fn two_factor_required(&self, principal: &Principal) -> Result<bool> {
        principal.require(Permission::ManageAccounts)?;
        self.db.run(|conn| Ok(two_factor::required(conn)?)).await
    }

    pub async fn set_two_factor_required(
        &self,
        principal: &Principal,
        required: bool,
    ) -> Result<()> {
        principal.require(Permission::ManageAccounts)?;
        let now = self.clock.now();
        let actor = principal.actor();
        let by = principal.account_id().map(str::to_owned);
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    two_factor::set_required(conn, now, by.as_deref(), required)?;
                    let detail = if required {
                        "two-factor sign-in required for every password account"
                    } else {
                        "two-factor sign-in no longer required"
                    };
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
                    Ok(())
                })
            })
            .await
    }

    /// The signed-in account as stored (its own page).
    pub async fn own_account(&self, principal: &Principal) -> Result<AccountRow> {
        let id = principal.account_id().ok_or(Error::Forbidden)?.to_owned();
        self.db
            .run(move |conn| accounts::find(conn, &id)?.ok_or(Error::NotFound))
            .await
    }
}
