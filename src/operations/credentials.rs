//! Machine credentials: made and revoked by administrators (or the command line), and
//! checked on every request of the machine front doors (SCIM, the access-key API).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::NaiveDateTime;
use secrecy::SecretString;

use super::{Operations, Permission, Principal, Result};
use crate::accounts::Role;
use crate::audit::{self, Action, NewAuditEvent};
use crate::credentials::{
    self, CreateError, CredentialKind, CredentialName, CredentialRow, IssuedSecret,
};
use crate::db::write_transaction;

/// The outcome of "Create credential". Made once per administrator's action, so its
/// size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum CredentialAdded {
    /// Made; the secret is in here and nowhere else from now on.
    Added(CredentialRow, IssuedSecret),
    /// A live credential already has this name.
    NameTaken,
}

/// A live access key found by its id, with what a signature is checked against.
pub struct AccessKeyForSigning {
    /// Acts as the key's role: [`Operations::access_key_verified`] gives it out once the
    /// signature is good.
    principal: Principal,
    key: Arc<KnownKey>,
}

impl AccessKeyForSigning {
    /// The secret access key: the SigV4 signing key is derived from it.
    pub fn secret(&self) -> &SecretString {
        &self.key.secret
    }

    /// The signing key for `scope` (SigV4's date/region/service), made by `derive` from
    /// the secret unless the key's previous request had the same scope: a script signs
    /// every request of a day with one.
    pub fn signing_key(
        &self,
        scope: &str,
        derive: impl FnOnce(&SecretString) -> [u8; 32],
    ) -> [u8; 32] {
        if let Ok(last) = self.key.derived.lock()
            && let Some((of, signing_key)) = last.as_ref()
            && of == scope
        {
            return *signing_key;
        }
        let signing_key = derive(&self.key.secret);
        if let Ok(mut last) = self.key.derived.lock() {
            *last = Some((scope.to_owned(), signing_key));
        }
        signing_key
    }
}

/// Access keys read recently, by key id, so that a signed request need not read its
/// key and unseal its secret each time. Remembered under the generation of the
/// [`crate::sessions::SessionCache`], and only while it may remember: a revocation
/// through this instance moves it on, and so, on PostgreSQL, does one made anywhere
/// (a trigger notifies every instance), so that the next request with a revoked key is
/// refused everywhere, as a disabled account is signed out everywhere.
#[derive(Default)]
pub struct AccessKeyCache {
    entries: RwLock<HashMap<String, Arc<KnownKey>>>,
}

/// Keys remembered at most; past it the cache starts afresh.
const KEYS_KEPT: usize = 10_000;

struct KnownKey {
    generation: u64,
    row: CredentialRow,
    secret: SecretString,
    /// When its use was last written (or is being written): once a minute at most.
    last_used_at: Mutex<Option<NaiveDateTime>>,
    /// The signing key last derived from the secret, and the scope it signs.
    derived: Mutex<Option<(String, [u8; 32])>>,
}

impl KnownKey {
    /// Whether this request should write "last used"; if so, the requests that follow
    /// need not (the write is under way).
    fn claim_use(&self, now: NaiveDateTime) -> bool {
        let Ok(mut last) = self.last_used_at.lock() else {
            return false;
        };
        if !credentials::last_use_is_stale(*last, now) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl AccessKeyCache {
    fn get(&self, key_id: &str, generation: u64) -> Option<Arc<KnownKey>> {
        let entries = self.entries.read().ok()?;
        entries
            .get(key_id)
            .filter(|known| known.generation == generation)
            .cloned()
    }

    fn put(&self, key_id: String, known: Arc<KnownKey>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= KEYS_KEPT {
                entries.clear();
            }
            entries.insert(key_id, known);
        }
    }
}

impl Operations {
    /// Makes a credential and audits it (never with its secret). SCIM tokens act as
    /// administrators whatever `role` says.
    pub async fn create_credential(
        &self,
        principal: &Principal,
        kind: CredentialKind,
        name: CredentialName,
        role: Role,
    ) -> Result<CredentialAdded> {
        principal.require(Permission::ManageCredentials)?;
        let now = self.clock.now();
        let actor = principal.actor();
        let created_by = actor.email.clone().unwrap_or_else(|| "unknown".to_owned());
        let key = self.credential_key.clone();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let (row, secret) = match credentials::create(
                        conn,
                        now,
                        kind,
                        &name,
                        role,
                        &created_by,
                        &key,
                    ) {
                        Ok(made) => made,
                        Err(CreateError::NameTaken) => return Ok(CredentialAdded::NameTaken),
                        Err(CreateError::Database(e)) => return Err(e.into()),
                    };
                    let detail = match kind {
                        CredentialKind::Scim => format!("SCIM token \"{}\"", row.name),
                        CredentialKind::AccessKey => format!(
                            "access key \"{}\" ({}, {})",
                            row.name,
                            row.key_id.as_deref().unwrap_or_default(),
                            row.role().label()
                        ),
                    };
                    audit::record(
                        conn,
                        &[NewAuditEvent::new(
                            now,
                            &actor,
                            Action::CredentialAdd,
                            None,
                            detail,
                        )],
                    )?;
                    Ok(CredentialAdded::Added(row, secret))
                })
            })
            .await
    }

    /// Every credential, live first, for the API access page.
    pub async fn credentials(&self, principal: &Principal) -> Result<Vec<CredentialRow>> {
        principal.require(Permission::ManageCredentials)?;
        self.db.run(|conn| Ok(credentials::list(conn)?)).await
    }

    /// One credential, for the revocation confirmation.
    pub async fn credential(&self, principal: &Principal, id: String) -> Result<CredentialRow> {
        principal.require(Permission::ManageCredentials)?;
        self.db
            .run(move |conn| credentials::find(conn, &id)?.ok_or(super::Error::NotFound))
            .await
    }

    /// Revokes a credential: the next request made with it is refused, on every
    /// instance (SCIM tokens are read on each request; access keys are remembered
    /// only until a revocation anywhere, see [`AccessKeyCache`]). None when it was not
    /// live.
    pub async fn revoke_credential(
        &self,
        principal: &Principal,
        id: String,
    ) -> Result<Option<CredentialRow>> {
        principal.require(Permission::ManageCredentials)?;
        let now = self.clock.now();
        let actor = principal.actor();
        let revoked = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let Some(row) = credentials::revoke(conn, &id, now)? else {
                        return Ok(None);
                    };
                    audit::record(
                        conn,
                        &[NewAuditEvent::new(
                            now,
                            &actor,
                            Action::CredentialRevoke,
                            None,
                            format!("{} \"{}\"", row.kind().label(), row.name),
                        )],
                    )?;
                    Ok(Some(row))
                })
            })
            .await;
        // Forgotten even on failure: the change may have committed before the error.
        self.sessions.forget_all();
        revoked
    }

    /// The principal a SCIM bearer token stands for, or none when the token is unknown
    /// or revoked. Reads the database every time, so revocation applies at once.
    pub async fn authenticate_scim_token(
        &self,
        token: SecretString,
        client_ip: Option<String>,
    ) -> Result<Option<Principal>> {
        use secrecy::ExposeSecret;
        let now = self.clock.now();
        let row = self
            .db
            .read(move |conn| {
                Ok::<_, super::Error>(credentials::by_scim_token(conn, token.expose_secret())?)
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if credentials::last_use_is_stale(row.last_used_at, now) {
            self.record_credential_use(row.id.clone(), now).await;
        }
        Ok(Some(Principal::credential(
            &row.id,
            &row.name,
            CredentialKind::Scim,
            Role::Administrator,
            client_ip,
        )))
    }

    /// A live access key and its secret, for checking a request's signature; none when
    /// the id is unknown or revoked. Read from the database (and unsealed) once, then
    /// remembered while no credential changes (see [`AccessKeyCache`]).
    pub async fn access_key_for_signing(
        &self,
        key_id: String,
        client_ip: Option<String>,
    ) -> Result<Option<AccessKeyForSigning>> {
        // Taken before reading: a revocation committed meanwhile makes the read stale.
        let generation = self.sessions.current();
        let remembered = generation.and_then(|g| self.access_keys.get(&key_id, g));
        let known = match remembered {
            Some(known) => known,
            None => {
                let key = self.credential_key.clone();
                let lookup = key_id.clone();
                let found = self
                    .db
                    .read(move |conn| {
                        Ok::<_, super::Error>(credentials::access_key(conn, &lookup, &key)?)
                    })
                    .await?;
                let Some((row, secret)) = found else {
                    return Ok(None);
                };
                let known = Arc::new(KnownKey {
                    generation: generation.unwrap_or(u64::MAX),
                    last_used_at: Mutex::new(row.last_used_at),
                    row,
                    secret,
                    derived: Mutex::default(),
                });
                if generation.is_some() && self.sessions.current() == generation {
                    self.access_keys.put(key_id, known.clone());
                }
                known
            }
        };
        Ok(Some(AccessKeyForSigning {
            principal: Principal::credential(
                &known.row.id,
                &known.row.name,
                CredentialKind::AccessKey,
                known.row.role(),
                client_ip,
            ),
            key: known,
        }))
    }

    /// The request's signature checked out: its use is noted ("last used" means a
    /// request the key really signed, not one that only named it) and it acts as its key.
    pub async fn access_key_verified(&self, key: AccessKeyForSigning) -> Principal {
        let now = self.clock.now();
        if key.key.claim_use(now) {
            self.record_credential_use(key.key.row.id.clone(), now)
                .await;
        }
        key.principal
    }

    /// Writes "last used" (callers do so at most once a minute per credential, see
    /// [`credentials::last_use_is_stale`]): a write per request would queue every
    /// request behind SQLite's one write lock. A failure to record it does not refuse
    /// the request.
    async fn record_credential_use(&self, id: String, now: NaiveDateTime) {
        let recorded = self
            .db
            .run(move |conn| Ok::<_, super::Error>(credentials::record_use(conn, &id, now)?))
            .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not record a credential's last use");
        }
    }
}
