//! Single sign-on through the organization's OpenID provider, with the `openidconnect`
//! crate: discovery from the issuer URL, the Authorization Code flow with PKCE (S256),
//! `state` and `nonce`, and the ID token's signature, issuer, audience, expiry and nonce
//! checked. Its HTTP calls go through async reqwest (rustls), so they never block a
//! worker thread; redirects are not followed (the crate's advice, against SSRF).
//!
//! This module speaks the protocol; who may sign in is decided by the operation
//! (`operations::single_sign_on`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::accounts::Role;

/// How long discovered metadata (endpoints, signing keys) is reused.
const METADATA_TTL: Duration = Duration::from_secs(600);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Single sign-on as configured (`ENROLL_OIDC_*`).
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The button's "Sign in with <name>".
    pub name: String,
    /// Asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The claim (in the ID token, or else from the UserInfo endpoint) listing groups.
    pub groups_claim: String,
    pub administrator_groups: Vec<String>,
    pub helpdesk_groups: Vec<String>,
    /// Password sign-in is closed, except for the break-glass administrators.
    pub only: bool,
    /// Email keys of the administrators who may still sign in with a password.
    pub break_glass: Vec<String>,
}

/// The client, with the provider's metadata cached.
pub struct Oidc {
    settings: OidcSettings,
    http: openidconnect::reqwest::Client,
    metadata: Mutex<Option<(Instant, Arc<CoreProviderMetadata>)>>,
}

/// Why the protocol did not yield an identity.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Unreachable(String),
    #[error("the identity provider's issuer is not the configured one: {0}")]
    WrongIssuer(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's answer did not pass the checks: {0}")]
    Invalid(String),
}

/// Where to send the browser, and what to keep until it comes back.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
}

/// Every claim besides the standard ones, so that the groups claim can be named by
/// configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl openidconnect::AdditionalClaims for OtherClaims {}

fn groups_in(
    claims: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<Vec<String>> {
    match claims.get(name)? {
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        serde_json::Value::String(one) => Some(vec![one.clone()]),
        _ => None,
    }
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| anyhow::anyhow!("ENROLL_OIDC_ISSUER is not a URL: {e}"))?;
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot make the HTTP client for single sign-on: {e}"))?;
        Ok(Self {
            settings,
            http,
            metadata: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn only(&self) -> bool {
        self.settings.only
    }

    pub fn is_break_glass(&self, email_key: &str) -> bool {
        self.settings.break_glass.iter().any(|b| b == email_key)
    }

    /// The role group membership gives, when a mapping is configured.
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        let member = |configured: &[String]| groups.iter().any(|g| configured.contains(g));
        if member(&self.settings.administrator_groups) {
            Some(Role::Administrator)
        } else if member(&self.settings.helpdesk_groups) {
            Some(Role::Helpdesk)
        } else {
            None
        }
    }

    async fn metadata(&self) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        if let Ok(cached) = self.metadata.lock()
            && let Some((at, metadata)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        let discovered = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Validation(message)
                    if message.contains("issuer") =>
                {
                    OidcError::WrongIssuer(message)
                }
                other => OidcError::Unreachable(crate::error::chain(&other)),
            })?;
        let discovered = Arc::new(discovered);
        if let Ok(mut cached) = self.metadata.lock() {
            *cached = Some((Instant::now(), discovered.clone()));
        }
        Ok(discovered)
    }

    fn forget_metadata(&self) {
        if let Ok(mut cached) = self.metadata.lock() {
            *cached = None;
        }
    }

    fn client(
        &self,
        metadata: &CoreProviderMetadata,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect =
            RedirectUrl::new(redirect.to_owned()).map_err(|e| OidcError::Invalid(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL for a new attempt, with fresh `state`, `nonce`
    /// and PKCE verifier.
    pub async fn authorization(&self, redirect: &str) -> Result<Authorization, OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code (with the PKCE verifier), checks the ID token, and reads the
    /// claims the console needs, from the ID token or else the UserInfo endpoint.
    pub async fn complete(
        &self,
        redirect: &str,
        code: String,
        nonce: String,
        pkce_verifier: String,
    ) -> Result<Identity, OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, redirect)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Invalid(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier));
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(response) => {
                    OidcError::Refused(response.to_string())
                }
                other => OidcError::Unreachable(crate::error::chain(&other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Invalid("no ID token in the token response".to_owned()))?;
        let claims = match id_token.claims(&client.id_token_verifier(), &Nonce::new(nonce)) {
            Ok(claims) => claims,
            Err(error) => {
                // The provider may have rotated its signing keys: read them again next time.
                self.forget_metadata();
                return Err(match error {
                    openidconnect::ClaimsVerificationError::InvalidIssuer(m) => {
                        OidcError::WrongIssuer(m)
                    }
                    other => OidcError::Invalid(other.to_string()),
                });
            }
        };
        let subject = claims.subject().to_string();
        let mut email = claims.email().map(|e| e.to_string());
        let mut email_verified = claims.email_verified().unwrap_or(false);
        // Verified above: its other claims (the groups) can be read from its payload.
        let id_token_claims = payload_claims(&id_token.to_string());
        let mut groups = groups_in(&id_token_claims, &self.settings.groups_claim);
        let wants_user_info = email.is_none() || groups.is_none();
        if wants_user_info && metadata.userinfo_endpoint().is_some() {
            let info: openidconnect::UserInfoClaims<OtherClaims, CoreGenderClaim> = client
                .user_info(
                    AccessToken::new(response.access_token().secret().clone()),
                    Some(claims.subject().clone()),
                )
                .map_err(|e| OidcError::Invalid(e.to_string()))?
                .request_async(&self.http)
                .await
                .map_err(|e| OidcError::Unreachable(crate::error::chain(&e)))?;
            if email.is_none() {
                email = info.email().map(|e| e.to_string());
                email_verified = info.email_verified().unwrap_or(false);
            }
            if groups.is_none() {
                groups = groups_in(
                    &info.additional_claims().claims,
                    &self.settings.groups_claim,
                );
            }
        }
        Ok(Identity {
            subject,
            email,
            email_verified,
            groups: groups.unwrap_or_default(),
        })
    }
}

/// The claims of a JWT's payload (whose signature was checked already).
fn payload_claims(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine as _;
    jwt.split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}
