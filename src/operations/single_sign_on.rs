//! Signing in through the organization's OpenID provider: sending the browser there,
//! and deciding on what it brings back. Only a verified address of an enabled console
//! account signs in; with a group mapping, a person in a mapped group without an
//! account gets one (audited). Every refusal is audited and starts no session.

use super::{Error, Operations, Principal, Result};
use crate::accounts::{self, AccountRow, CreateAccountError};
use crate::audit::{self, Action, NewAuditEvent};
use crate::db::write_transaction;
use crate::oidc::{Identity, OidcError};
use crate::oidc_attempts::{self, Consumed};
use crate::settings::InvitationSettings;
use crate::values::EmailAddress;

const VERIFIER_PURPOSE: &str = "pkce-verifier";
pub const CALLBACK_PATH: &str = "/login/oidc/callback";

/// Where to send the browser to sign in at the provider.
pub enum SsoStart {
    Redirect { url: String, state: String },
    Refused(SsoRefusal),
}

pub enum SingleSignOn {
    SignedIn(AccountRow),
    Refused(SsoRefusal),
}

/// Why a single sign-on was refused: one clear sentence for the person, and the audit's.
#[derive(Debug)]
pub enum SsoRefusal {
    NotConfigured,
    NoPublicUrl,
    StateMismatch,
    Replayed,
    Expired,
    WrongIssuer(String),
    ProviderError(String),
    Unreachable(String),
    InvalidAnswer(String),
    NoEmail,
    UnverifiedEmail(String),
    UnknownAccount(String),
    AccountDisabled(String),
}

impl SsoRefusal {
    pub fn message(&self) -> String {
        match self {
            Self::NotConfigured => "Single sign-on is not set up on this console.".to_owned(),
            Self::NoPublicUrl => "Single sign-on needs the console's public URL: an administrator saves it in Invitation settings first.".to_owned(),
            Self::StateMismatch => "This sign-in did not start in this browser (its state does not match), so it was refused. Start again from the sign-in page.".to_owned(),
            Self::Replayed => "This sign-in response was used already and cannot be used again. Start again from the sign-in page.".to_owned(),
            Self::Expired => "This sign-in took too long and expired. Start again from the sign-in page.".to_owned(),
            Self::WrongIssuer(_) => "The identity provider that answered is not the one this console trusts, so the sign-in was refused.".to_owned(),
            Self::ProviderError(e) => format!("The identity provider did not sign you in ({e})."),
            Self::Unreachable(_) => "The identity provider could not be reached. Try again in a moment, or ask your administrator.".to_owned(),
            Self::InvalidAnswer(_) => "The identity provider's answer did not pass the checks, so the sign-in was refused.".to_owned(),
            Self::NoEmail => "The identity provider did not tell this console your email address, so the sign-in was refused.".to_owned(),
            Self::UnverifiedEmail(email) => format!("The identity provider has not verified the address {email}, so it cannot sign in here."),
            Self::UnknownAccount(email) => format!("There is no console account for {email}. Ask an administrator to add one."),
            Self::AccountDisabled(email) => format!("The console account {email} is disabled."),
        }
    }

    fn audit_detail(&self) -> String {
        let reason = match self {
            Self::NotConfigured => "not configured".to_owned(),
            Self::NoPublicUrl => "no public URL saved".to_owned(),
            Self::StateMismatch => "state mismatch".to_owned(),
            Self::Replayed => "replayed callback".to_owned(),
            Self::Expired => "expired attempt".to_owned(),
            Self::WrongIssuer(e) => format!("wrong issuer: {e}"),
            Self::ProviderError(e) => format!("provider error: {e}"),
            Self::Unreachable(e) => format!("provider unreachable: {e}"),
            Self::InvalidAnswer(e) => format!("invalid answer: {e}"),
            Self::NoEmail => "no email claim".to_owned(),
            Self::UnverifiedEmail(_) => "email not verified".to_owned(),
            Self::UnknownAccount(_) => "no console account with this email".to_owned(),
            Self::AccountDisabled(_) => "account disabled".to_owned(),
        };
        // Parts of it come from the callback's query or the provider: one printable line.
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        format!("single sign-on refused: {reason}")
    }

    fn subject(&self) -> Option<&str> {
        match self {
            Self::UnverifiedEmail(e) | Self::UnknownAccount(e) | Self::AccountDisabled(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

impl From<OidcError> for SsoRefusal {
    fn from(error: OidcError) -> Self {
        match error {
            OidcError::WrongIssuer(e) => Self::WrongIssuer(e),
            OidcError::Refused(e) => Self::ProviderError(e),
            OidcError::Unreachable(e) => Self::Unreachable(e),
            OidcError::Invalid(e) => Self::InvalidAnswer(e),
        }
    }
}

/// What the provider sent back to the callback.
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: the issuer that answered (against mix-up attacks).
    pub iss: Option<String>,
}

fn redirect_uri(settings: Option<InvitationSettings>) -> Option<String> {
    let public_url = settings?.public_url;
    let base = public_url.trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}{CALLBACK_PATH}"))
}

impl Operations {
    async fn refuse(&self, principal: &Principal, refusal: SsoRefusal) -> Result<SsoRefusal> {
        let event = NewAuditEvent::new(
            self.clock.now(),
            &principal.actor(),
            Action::SignInFailed,
            refusal.subject(),
            refusal.audit_detail(),
        );
        self.db
            .run(move |conn| Ok::<_, Error>(audit::record(conn, &[event])?))
            .await?;
        Ok(refusal)
    }

    async fn callback_url(&self) -> Result<Option<String>> {
        Ok(redirect_uri(self.invitation_settings().await?))
    }

    /// Starts a single sign-on: a new attempt, and the provider's URL to send the browser to.
    pub async fn begin_single_sign_on(&self, principal: &Principal) -> Result<SsoStart> {
        let Some(oidc) = self.sign_in.oidc.as_ref() else {
            return Ok(SsoStart::Refused(SsoRefusal::NotConfigured));
        };
        let Some(redirect) = self.callback_url().await? else {
            return Ok(SsoStart::Refused(
                self.refuse(principal, SsoRefusal::NoPublicUrl).await?,
            ));
        };
        let authorization = match oidc.authorization(&redirect).await {
            Ok(authorization) => authorization,
            Err(error) => {
                return Ok(SsoStart::Refused(
                    self.refuse(principal, error.into()).await?,
                ));
            }
        };
        let sealed = self.sign_in.sealer.seal(
            &format!("{VERIFIER_PURPOSE}:{}", authorization.state),
            authorization.pkce_verifier.as_bytes(),
        );
        let now = self.clock.now();
        let state = authorization.state.clone();
        let nonce = authorization.nonce;
        self.db
            .run(move |conn| {
                Ok::<_, Error>(oidc_attempts::create(conn, now, &state, &nonce, &sealed)?)
            })
            .await?;
        Ok(SsoStart::Redirect {
            url: authorization.url,
            state: authorization.state,
        })
    }

    /// Finishes a single sign-on. `browser_state` is the state this browser started with
    /// (kept in its cookie), which must be the one the provider sent back.
    pub async fn finish_single_sign_on(
        &self,
        principal: &Principal,
        browser_state: Option<String>,
        callback: Callback,
    ) -> Result<SingleSignOn> {
        match self.check_callback(browser_state, callback).await? {
            Ok(identity) => self.sign_in_identity(principal, identity).await,
            // Nothing to audit: there is no single sign-on to attempt.
            Err(SsoRefusal::NotConfigured) => Ok(SingleSignOn::Refused(SsoRefusal::NotConfigured)),
            Err(refusal) => Ok(SingleSignOn::Refused(
                self.refuse(principal, refusal).await?,
            )),
        }
    }

    async fn check_callback(
        &self,
        browser_state: Option<String>,
        callback: Callback,
    ) -> Result<std::result::Result<Identity, SsoRefusal>> {
        let Some(oidc) = self.sign_in.oidc.as_ref() else {
            return Ok(Err(SsoRefusal::NotConfigured));
        };
        let Some(state) = callback.state.filter(|s| !s.is_empty()) else {
            return Ok(Err(SsoRefusal::StateMismatch));
        };
        let same_browser = browser_state
            .is_some_and(|b| crate::crypto::constant_time_eq(b.as_bytes(), state.as_bytes()));
        let now = self.clock.now();
        if !same_browser {
            let probe = state.clone();
            let used = self
                .db
                .run(move |conn| Ok::<_, Error>(oidc_attempts::was_used(conn, &probe)?))
                .await?;
            return Ok(Err(if used {
                SsoRefusal::Replayed
            } else {
                SsoRefusal::StateMismatch
            }));
        }
        let taken = state.clone();
        let consumed = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    Ok::<_, Error>(oidc_attempts::consume(conn, now, &taken)?)
                })
            })
            .await?;
        let (nonce, sealed_verifier) = match consumed {
            Consumed::Fresh {
                nonce,
                sealed_verifier,
            } => (nonce, sealed_verifier),
            Consumed::AlreadyUsed => return Ok(Err(SsoRefusal::Replayed)),
            Consumed::Expired => return Ok(Err(SsoRefusal::Expired)),
            Consumed::Unknown => return Ok(Err(SsoRefusal::StateMismatch)),
        };
        if let Some(iss) = &callback.iss
            && iss.trim_end_matches('/') != oidc.issuer().trim_end_matches('/')
        {
            return Ok(Err(SsoRefusal::WrongIssuer(format!(
                "the response came from {iss}"
            ))));
        }
        if let Some(error) = callback.error {
            let description = callback.error_description.unwrap_or_default();
            let text = if description.is_empty() {
                error
            } else {
                format!("{error}: {description}")
            };
            return Ok(Err(SsoRefusal::ProviderError(
                text.chars().filter(|c| !c.is_control()).take(300).collect(),
            )));
        }
        let Some(code) = callback.code.filter(|c| !c.is_empty()) else {
            return Ok(Err(SsoRefusal::InvalidAnswer("no code".to_owned())));
        };
        let verifier = self
            .sign_in
            .sealer
            .open(&format!("{VERIFIER_PURPOSE}:{state}"), &sealed_verifier)
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(verifier) = verifier else {
            return Ok(Err(SsoRefusal::InvalidAnswer(
                "the attempt cannot be opened (the session key changed)".to_owned(),
            )));
        };
        let Some(redirect) = self.callback_url().await? else {
            return Ok(Err(SsoRefusal::NoPublicUrl));
        };
        Ok(oidc
            .complete(&redirect, code, nonce, verifier)
            .await
            .map_err(SsoRefusal::from))
    }

    async fn sign_in_identity(
        &self,
        principal: &Principal,
        identity: Identity,
    ) -> Result<SingleSignOn> {
        let Some(oidc) = self.sign_in.oidc.as_ref() else {
            return Ok(SingleSignOn::Refused(SsoRefusal::NotConfigured));
        };
        let Some(email) = identity
            .email
            .as_deref()
            .and_then(|e| EmailAddress::parse(e).ok())
        else {
            return Ok(SingleSignOn::Refused(
                self.refuse(principal, SsoRefusal::NoEmail).await?,
            ));
        };
        if !identity.email_verified {
            let refusal = SsoRefusal::UnverifiedEmail(email.as_str().to_owned());
            return Ok(SingleSignOn::Refused(
                self.refuse(principal, refusal).await?,
            ));
        }
        let mapped_role = oidc.role_for(&identity.groups);
        let groups = identity.groups.join(", ");
        let issuer = oidc.issuer().to_owned();
        let now = self.clock.now();
        let client_ip = principal.client_ip.clone();
        let outcome = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let mut events = Vec::new();
                    let account = match accounts::find_by_email(conn, email.as_str())? {
                        Some(account) => account,
                        None => {
                            let Some(role) = mapped_role else {
                                return Ok(Err(SsoRefusal::UnknownAccount(
                                    email.as_str().to_owned(),
                                )));
                            };
                            // No password: this account signs in through the provider only.
                            let id = match accounts::create(conn, now, &email, "", role) {
                                Ok(id) => id,
                                Err(CreateAccountError::AlreadyExists) => {
                                    // Its first sign-in, twice at once: the other one made it.
                                    return Err(Error::Unexpected(anyhow::anyhow!(
                                        "the account was created by a simultaneous sign-in"
                                    )));
                                }
                                Err(CreateAccountError::Database(e)) => return Err(e.into()),
                            };
                            accounts::setup_code::clear(conn)?;
                            let actor =
                                Principal::account(&id, email.as_str(), role, client_ip.clone());
                            events.push(NewAuditEvent::new(
                                now,
                                &actor.actor(),
                                Action::AccountAdd,
                                Some(email.as_str()),
                                format!("{}, from single sign-on (groups: {groups})", role.label()),
                            ));
                            accounts::find(conn, &id)?.ok_or(Error::NotFound)?
                        }
                    };
                    if !account.is_active() {
                        return Ok(Err(SsoRefusal::AccountDisabled(account.email)));
                    }
                    let actor = Principal::account(
                        &account.id,
                        &account.email,
                        account.role(),
                        client_ip.clone(),
                    );
                    events.push(NewAuditEvent::new(
                        now,
                        &actor.actor(),
                        Action::SignIn,
                        None,
                        format!("single sign-on ({issuer})"),
                    ));
                    audit::record(conn, &events)?;
                    Ok(Ok(account))
                })
            })
            .await?;
        match outcome {
            Ok(account) => Ok(SingleSignOn::SignedIn(account)),
            Err(refusal) => Ok(SingleSignOn::Refused(
                self.refuse(principal, refusal).await?,
            )),
        }
    }
}
