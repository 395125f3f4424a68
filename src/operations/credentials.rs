//! Machine credentials: made and revoked by administrators (or the command line), and
//! checked on every request of the machine front doors (SCIM, the access-key API).

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
    /// The secret access key: the SigV4 signing key is derived from it.
    pub secret: SecretString,
    row: CredentialRow,
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
    /// instance (each request reads the database). None when it was not live.
    pub async fn revoke_credential(
        &self,
        principal: &Principal,
        id: String,
    ) -> Result<Option<CredentialRow>> {
        principal.require(Permission::ManageCredentials)?;
        let now = self.clock.now();
        let actor = principal.actor();
        self.db
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
            .await
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
        self.note_credential_use(&row, now).await;
        Ok(Some(Principal::credential(
            &row.id,
            &row.name,
            CredentialKind::Scim,
            Role::Administrator,
            client_ip,
        )))
    }

    /// A live access key and its secret, for checking a request's signature; none when
    /// the id is unknown or revoked.
    pub async fn access_key_for_signing(
        &self,
        key_id: String,
        client_ip: Option<String>,
    ) -> Result<Option<AccessKeyForSigning>> {
        let key = self.credential_key.clone();
        let found = self
            .db
            .read(move |conn| Ok::<_, super::Error>(credentials::access_key(conn, &key_id, &key)?))
            .await?;
        let Some((row, secret)) = found else {
            return Ok(None);
        };
        Ok(Some(AccessKeyForSigning {
            principal: Principal::credential(
                &row.id,
                &row.name,
                CredentialKind::AccessKey,
                row.role(),
                client_ip,
            ),
            secret,
            row,
        }))
    }

    /// The request's signature checked out: its use is noted ("last used" means a
    /// request the key really signed, not one that only named it) and it acts as its key.
    pub async fn access_key_verified(&self, key: AccessKeyForSigning) -> Principal {
        self.note_credential_use(&key.row, self.clock.now()).await;
        key.principal
    }

    /// Writes "last used" at most once a minute per credential: a write per request
    /// would queue every request behind SQLite's one write lock. A failure to record it
    /// does not refuse the request.
    async fn note_credential_use(&self, row: &CredentialRow, now: chrono::NaiveDateTime) {
        if !credentials::last_use_is_stale(row, now) {
            return;
        }
        let id = row.id.clone();
        let recorded = self
            .db
            .run(move |conn| Ok::<_, super::Error>(credentials::record_use(conn, &id, now)?))
            .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not record a credential's last use");
        }
    }
}
