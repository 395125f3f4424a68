//! Console sessions: actix-session's `SessionStore` over the sessions table (see
//! [`crate::sessions`]), and the extractors for the signed-in account.

use std::collections::HashMap;
use std::future::{Ready, ready};

use super::error::AppError;
use crate::accounts::Role;
use crate::crypto;
use crate::sessions::SessionRecords;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_session::{Session, SessionExt};
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

pub const COOKIE_NAME: &str = "enroll_session";
const ACCOUNT_ID: &str = "account_id";
/// Filled in from the accounts table at every load, never trusted from storage.
const LOADED_EMAIL: &str = "_account_email";
const LOADED_ROLE: &str = "_account_role";

/// actix-session's store over [`SessionRecords`]; the cookie holds only a signed random
/// id, the database its SHA-256.
#[derive(Clone)]
pub struct DbSessionStore {
    records: SessionRecords,
}

impl DbSessionStore {
    pub fn new(records: SessionRecords) -> Self {
        Self { records }
    }

    fn serialize(state: &HashMap<String, String>) -> Result<(String, String), anyhow::Error> {
        let account_id: String = state
            .get(ACCOUNT_ID)
            .map(|v| serde_json::from_str(v))
            .transpose()?
            .ok_or_else(|| anyhow::anyhow!("only signed-in sessions are stored"))?;
        let stored: HashMap<&String, &String> =
            state.iter().filter(|(k, _)| !k.starts_with('_')).collect();
        Ok((account_id, serde_json::to_string(&stored)?))
    }
}

fn key_hash(key: &SessionKey) -> String {
    crypto::sha256_hex(key.as_ref().as_bytes())
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let Some(stored) = self
            .records
            .load(key_hash(session_key))
            .await
            .map_err(|e| LoadError::Other(e.into()))?
        else {
            return Ok(None);
        };
        let mut state: HashMap<String, String> = serde_json::from_str(&stored.state)
            .map_err(|e| LoadError::Deserialization(e.into()))?;
        state.insert(
            LOADED_EMAIL.to_owned(),
            serde_json::Value::String(stored.account_email).to_string(),
        );
        state.insert(
            LOADED_ROLE.to_owned(),
            serde_json::Value::String(stored.account_role).to_string(),
        );
        Ok(Some(state))
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let (account_id, state) =
            Self::serialize(&session_state).map_err(SaveError::Serialization)?;
        let key: SessionKey = crypto::random_token()
            .try_into()
            .map_err(|e| SaveError::Other(anyhow::anyhow!("{e}")))?;
        self.records
            .create(key_hash(&key), account_id, state)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let (_, state) = Self::serialize(&session_state).map_err(UpdateError::Serialization)?;
        let updated = self
            .records
            .update(key_hash(&session_key), state)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if updated {
            Ok(session_key)
        } else {
            self.save(session_state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            })
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        Ok(self.records.extend(key_hash(session_key)).await?)
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(self.records.delete(key_hash(session_key)).await?)
    }
}

/// Starts a signed-in session for `account_id` under a new id (no fixation).
pub fn sign_in(session: &Session, account_id: &str) -> Result<(), AppError> {
    session.renew();
    session
        .insert(ACCOUNT_ID, account_id)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("cannot store the session: {e}")))
}

/// Ends the session here and in the database.
pub fn sign_out(session: &Session) {
    session.purge();
}

/// The signed-in console account, or a redirect to the sign-in page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account_id: String,
    pub email: String,
    pub role: Role,
}

impl SignedIn {
    pub fn from_session(session: &Session) -> Option<Self> {
        let account_id = session.get::<String>(ACCOUNT_ID).ok()??;
        let email = session.get::<String>(LOADED_EMAIL).ok()??;
        let role = Role::parse(&session.get::<String>(LOADED_ROLE).ok()??)?;
        Some(Self {
            account_id,
            email,
            role,
        })
    }

    pub fn is_administrator(&self) -> bool {
        self.role.is_administrator()
    }
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let signed_in = SignedIn::from_session(&req.get_session()).ok_or_else(|| {
            let return_to = if req.method() == actix_web::http::Method::GET {
                req.uri()
                    .path_and_query()
                    .map(|pq| pq.as_str().to_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            AppError::NotSignedIn { return_to }
        });
        ready(signed_in)
    }
}

/// A signed-in administrator; any other role gets 403.
#[derive(Debug, Clone)]
pub struct Administrator(pub SignedIn);

impl FromRequest for Administrator {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let result = SignedIn::from_request(req, payload)
            .into_inner()
            .and_then(|account| {
                if account.is_administrator() {
                    Ok(Self(account))
                } else {
                    Err(AppError::Forbidden)
                }
            });
        ready(result)
    }
}
