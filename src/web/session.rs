//! Console sessions, kept in the database through actix-session's `SessionStore`, so
//! that any instance serves any request and ending a session ends it everywhere.
//! The cookie holds only a signed random id; the table holds its SHA-256.

use std::collections::HashMap;
use std::future::{Ready, ready};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_session::{Session, SessionExt};
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::accounts::Role;
use crate::clock::Clock;
use crate::crypto;
use crate::db::Db;
use crate::db::schema::{accounts, sessions};
use crate::error::AppError;

pub const COOKIE_NAME: &str = "enroll_session";
const ACCOUNT_ID: &str = "account_id";
/// Filled in from the accounts table at every load, never trusted from storage.
const LOADED_EMAIL: &str = "_account_email";
const LOADED_ROLE: &str = "_account_role";
/// Idle expiry is pushed forward at most this often, not on every request.
const TOUCH_INTERVAL: TimeDelta = TimeDelta::seconds(60);

#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    clock: Clock,
    idle: TimeDelta,
    lifetime: TimeDelta,
}

impl DbSessionStore {
    pub fn new(
        db: Db,
        clock: Clock,
        idle: std::time::Duration,
        lifetime: std::time::Duration,
    ) -> Self {
        Self {
            db,
            clock,
            idle: TimeDelta::from_std(idle).unwrap_or(TimeDelta::hours(1)),
            lifetime: TimeDelta::from_std(lifetime).unwrap_or(TimeDelta::hours(12)),
        }
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

    /// The session stays alive for another idle period from `now`.
    async fn extend(&self, hash: String, now: chrono::NaiveDateTime) -> Result<(), AppError> {
        let idle = self.idle;
        self.db
            .run(move |conn| {
                diesel::update(sessions::table.find(&hash))
                    .set(sessions::idle_expires_at.eq(now + idle))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }
}

fn key_hash(key: &SessionKey) -> String {
    crypto::sha256_hex(key.as_ref().as_bytes())
}

fn to_anyhow(error: AppError) -> anyhow::Error {
    anyhow::anyhow!(error)
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let hash = key_hash(session_key);
        let now = self.clock.now();
        let idle = self.idle;
        let lookup = hash.clone();
        let row = self
            .db
            .read(move |conn| {
                let row: Option<(String, NaiveDateTime, String, String)> = sessions::table
                    .inner_join(accounts::table)
                    .filter(sessions::id_hash.eq(&lookup))
                    .filter(sessions::idle_expires_at.gt(now))
                    .filter(sessions::expires_at.gt(now))
                    .filter(accounts::disabled_at.is_null())
                    .select((
                        sessions::state,
                        sessions::idle_expires_at,
                        accounts::email,
                        accounts::role,
                    ))
                    .first(conn)
                    .optional()?;
                Ok(row)
            })
            .await
            .map_err(|e| LoadError::Other(to_anyhow(e)))?;
        let Some((state, idle_expires_at, email, role)) = row else {
            return Ok(None);
        };
        if now + idle - idle_expires_at > TOUCH_INTERVAL {
            self.extend(hash, now)
                .await
                .map_err(|e| LoadError::Other(to_anyhow(e)))?;
        }
        let mut state: HashMap<String, String> =
            serde_json::from_str(&state).map_err(|e| LoadError::Deserialization(e.into()))?;
        state.insert(
            LOADED_EMAIL.to_owned(),
            serde_json::Value::String(email).to_string(),
        );
        state.insert(
            LOADED_ROLE.to_owned(),
            serde_json::Value::String(role).to_string(),
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
        let hash = key_hash(&key);
        let now = self.clock.now();
        let (idle, lifetime) = (self.idle, self.lifetime);
        self.db
            .run(move |conn| {
                diesel::insert_into(sessions::table)
                    .values((
                        sessions::id_hash.eq(hash),
                        sessions::account_id.eq(account_id),
                        sessions::state.eq(state),
                        sessions::created_at.eq(now),
                        sessions::idle_expires_at.eq(now + idle),
                        sessions::expires_at.eq(now + lifetime),
                    ))
                    .execute(conn)?;
                // Sign-in is rare: a good moment to forget sessions that ended long ago.
                diesel::delete(sessions::table.filter(sessions::expires_at.le(now)))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .map_err(|e| SaveError::Other(to_anyhow(e)))?;
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let (_, state) = Self::serialize(&session_state).map_err(UpdateError::Serialization)?;
        let hash = key_hash(&session_key);
        let now = self.clock.now();
        let idle = self.idle;
        let updated = self
            .db
            .run(move |conn| {
                Ok(diesel::update(
                    sessions::table
                        .find(&hash)
                        .filter(sessions::expires_at.gt(now)),
                )
                .set((
                    sessions::state.eq(state),
                    sessions::idle_expires_at.eq(now + idle),
                ))
                .execute(conn)?)
            })
            .await
            .map_err(|e| UpdateError::Other(to_anyhow(e)))?;
        if updated == 1 {
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
        self.extend(key_hash(session_key), self.clock.now())
            .await
            .map_err(to_anyhow)
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let hash = key_hash(session_key);
        self.db
            .run(move |conn| {
                diesel::delete(sessions::table.find(&hash)).execute(conn)?;
                Ok(())
            })
            .await
            .map_err(to_anyhow)
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
