//! Machine credentials (API.md "Credentials"): SCIM bearer tokens, kept only as their
//! SHA-256, and access keys for signed requests, whose secret is kept sealed with a key
//! derived from the session secret (never in the database). Every lookup reads the
//! database, so a revoked credential stops working at once on every instance.

use base64::Engine as _;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use secrecy::SecretString;

use crate::accounts::Role;
use crate::crypto;
use crate::db::schema::credentials;
use crate::db::{DbConnection, is_unique_violation};
use crate::mail::MailKey;
use crate::values::InvalidInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A bearer token for `/scim/v2`; acts as an administrator for provisioning.
    Scim,
    /// An access key id and secret that sign requests; acts with its role.
    AccessKey,
}

impl CredentialKind {
    pub const ALL: [Self; 2] = [Self::Scim, Self::AccessKey];

    /// The value in forms, on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scim => "scim",
            Self::AccessKey => "access-key",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Scim => "SCIM token",
            Self::AccessKey => "Access key",
        }
    }

    /// How the audit log names a credential of this kind: "SCIM: Okta".
    pub fn actor_prefix(self) -> &'static str {
        match self {
            Self::Scim => "SCIM",
            Self::AccessKey => "access key",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// A credential's name, as typed: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialName(String);

impl CredentialName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let name = input.trim();
        if name.is_empty() {
            return Err(InvalidInput::new(
                "Enter a name, such as Okta or onboarding script.",
            ));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new("Use at most 100 characters."));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "Use letters, digits, spaces and punctuation only.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key that seals access key secrets; derived from the session secret, so every
/// instance sharing it can check signatures, and a copy of the database alone cannot.
#[derive(Clone, Debug)]
pub struct CredentialKey(MailKey);

impl CredentialKey {
    const INFO: &'static [u8] = b"enroll access key secrets v1";

    pub fn derive(secret: &[u8]) -> Self {
        Self(MailKey::derive_for(secret, Self::INFO))
    }

    /// A key nobody else holds: access keys made with it can never be checked.
    pub fn ephemeral() -> Self {
        Self::derive(&crypto::random_bytes::<32>())
    }

    fn seal(&self, key_id: &str, secret: &str) -> String {
        self.0.seal(key_id, secret)
    }

    /// The secret sealed for `key_id`; none when it was sealed under another session
    /// secret (the key changed) or the row was altered.
    fn open(&self, key_id: &str, stored: &str) -> Option<String> {
        if !MailKey::is_sealed(stored) {
            return None;
        }
        self.0.open(key_id, stored).ok()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = credentials)]
pub struct CredentialRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub role: String,
    pub key_id: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl CredentialRow {
    pub fn kind(&self) -> CredentialKind {
        CredentialKind::parse(&self.kind).unwrap_or(CredentialKind::AccessKey)
    }

    /// A stored role outside the known ones (edited by hand) grants the least.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Helpdesk)
    }

    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// What is shown once, at creation, and never again.
pub enum IssuedSecret {
    Scim {
        token: SecretString,
    },
    AccessKey {
        key_id: String,
        secret: SecretString,
    },
}

pub enum CreateError {
    /// A live credential already has this name.
    NameTaken,
    Database(diesel::result::Error),
}

impl From<diesel::result::Error> for CreateError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error)
    }
}

/// `AKIA`-style: 20 upper-case letters and digits, as the AWS SDKs expect key ids.
fn new_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = crypto::random_bytes::<16>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    format!("AKIA{id}")
}

/// 40 characters, as AWS secret access keys are (base64 of 30 random bytes).
fn new_access_secret() -> String {
    base64::engine::general_purpose::STANDARD.encode(crypto::random_bytes::<30>())
}

/// Creates a credential; SCIM tokens always act as administrators.
pub fn create(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    kind: CredentialKind,
    name: &CredentialName,
    role: Role,
    created_by: &str,
    key: &CredentialKey,
) -> Result<(CredentialRow, IssuedSecret), CreateError> {
    let id = uuid::Uuid::now_v7().to_string();
    let (role, token_hash, key_id, sealed, issued) = match kind {
        CredentialKind::Scim => {
            let token = crypto::random_token();
            let hash = crypto::sha256_hex(token.as_bytes());
            let issued = IssuedSecret::Scim {
                token: SecretString::from(token),
            };
            (Role::Administrator, Some(hash), None, None, issued)
        }
        CredentialKind::AccessKey => {
            let key_id = new_key_id();
            let secret = new_access_secret();
            let sealed = key.seal(&key_id, &secret);
            let issued = IssuedSecret::AccessKey {
                key_id: key_id.clone(),
                secret: SecretString::from(secret),
            };
            (role, None, Some(key_id), Some(sealed), issued)
        }
    };
    let inserted = diesel::insert_into(credentials::table)
        .values((
            credentials::id.eq(&id),
            credentials::kind.eq(kind.as_str()),
            credentials::name.eq(name.as_str()),
            credentials::role.eq(role.as_str()),
            credentials::token_hash.eq(token_hash),
            credentials::key_id.eq(&key_id),
            credentials::sealed_secret.eq(sealed),
            credentials::created_by.eq(created_by),
            credentials::created_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Err(error) if is_unique_violation(&error) => return Err(CreateError::NameTaken),
        other => other?,
    };
    let row = CredentialRow {
        id,
        kind: kind.as_str().to_owned(),
        name: name.as_str().to_owned(),
        role: role.as_str().to_owned(),
        key_id,
        created_by: created_by.to_owned(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    Ok((row, issued))
}

/// Every credential, live ones first, newest first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<CredentialRow>> {
    let mut rows = credentials::table
        .order((credentials::created_at.desc(), credentials::id.desc()))
        .select(CredentialRow::as_select())
        .load::<CredentialRow>(conn)?;
    rows.sort_by_key(|row| row.revoked_at.is_some());
    Ok(rows)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<CredentialRow>> {
    credentials::table
        .find(id)
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes a live credential; returns it as it was, or none when there is no such live
/// credential (unknown, or revoked already).
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<CredentialRow>> {
    let Some(row) = find(conn, id)? else {
        return Ok(None);
    };
    let changed = diesel::update(
        credentials::table
            .filter(credentials::id.eq(id))
            .filter(credentials::revoked_at.is_null()),
    )
    .set(credentials::revoked_at.eq(now))
    .execute(conn)?;
    Ok((changed == 1).then_some(row))
}

/// The live SCIM credential with this token, if any.
pub fn by_scim_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<CredentialRow>> {
    // Looked up by hash: the index finds it, and the comparison is over the hash, so its
    // timing tells nothing about the token.
    let hash = crypto::sha256_hex(token.as_bytes());
    credentials::table
        .filter(credentials::token_hash.eq(hash))
        .filter(credentials::kind.eq(CredentialKind::Scim.as_str()))
        .filter(credentials::revoked_at.is_null())
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()
}

/// The live access key with this id and its secret, if any (and if this instance's key
/// opens it).
pub fn access_key(
    conn: &mut DbConnection,
    key_id: &str,
    key: &CredentialKey,
) -> QueryResult<Option<(CredentialRow, SecretString)>> {
    let found: Option<(CredentialRow, Option<String>)> = credentials::table
        .filter(credentials::key_id.eq(key_id))
        .filter(credentials::kind.eq(CredentialKind::AccessKey.as_str()))
        .filter(credentials::revoked_at.is_null())
        .select((CredentialRow::as_select(), credentials::sealed_secret))
        .first(conn)
        .optional()?;
    let Some((row, Some(sealed))) = found else {
        return Ok(None);
    };
    match key.open(key_id, &sealed) {
        Some(secret) => Ok(Some((row, SecretString::from(secret)))),
        None => {
            tracing::warn!(
                key_id,
                "an access key's secret cannot be opened: the session key changed since it \
                 was made, or the row was altered; make a new access key"
            );
            Ok(None)
        }
    }
}

/// "Last used" is kept to the minute: writing it on every request would take SQLite's
/// write lock for each one.
const LAST_USE_PRECISION: TimeDelta = TimeDelta::minutes(1);

/// Whether a credential last used at `last_used_at` should have its use written now.
pub fn last_use_is_stale(last_used_at: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
    last_used_at.is_none_or(|at| now - at >= LAST_USE_PRECISION || at > now)
}

/// Records a use (call when [`last_use_is_stale`]).
pub fn record_use(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(credentials::table.filter(credentials::id.eq(id)))
        .set(credentials::last_used_at.eq(now))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_look_like_aws_ones_and_secrets_are_forty_characters() {
        let id = new_key_id();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(new_access_secret().len(), 40);
        assert_ne!(new_key_id(), id);
    }

    #[test]
    fn secrets_open_only_under_their_key_id_and_key() {
        let key = CredentialKey::derive(b"a session secret of at least thirty-two bytes");
        let sealed = key.seal("AKIAEXAMPLE", "the secret");
        assert!(!sealed.contains("the secret"));
        assert_eq!(
            key.open("AKIAEXAMPLE", &sealed).as_deref(),
            Some("the secret")
        );
        assert_eq!(key.open("AKIAOTHER", &sealed), None);
        assert_eq!(
            CredentialKey::ephemeral().open("AKIAEXAMPLE", &sealed),
            None
        );
        // A value stored without sealing is not accepted as a secret.
        assert_eq!(key.open("AKIAEXAMPLE", "the secret"), None);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(CredentialName::parse("  Okta ").unwrap().as_str(), "Okta");
        assert!(CredentialName::parse("").is_err());
        assert!(CredentialName::parse("a\r\nb").is_err());
        assert!(CredentialName::parse(&"x".repeat(101)).is_err());
    }
}
