//! Console accounts: the administrators and help-desk staff who sign in.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use crate::db::schema::{accounts, sessions, setup_codes};
use crate::db::{self, DbConnection};
use crate::values::{EmailAddress, InvalidInput};

pub const MIN_PASSWORD_LENGTH: usize = 12;
pub const MAX_PASSWORD_LENGTH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    Administrator,
    Helpdesk,
}

impl Role {
    pub const ALL: [Self; 2] = [Self::Administrator, Self::Helpdesk];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::Helpdesk => "helpdesk",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Administrator => "Administrator",
            Self::Helpdesk => "Help desk",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    pub fn is_administrator(self) -> bool {
        self == Self::Administrator
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
    /// Sealed ([`crate::crypto::Sealer`]); set while two-factor sign-in is on.
    pub totp_secret: Option<String>,
}

impl AccountRow {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; an unknown value gets the lesser role.
        Role::parse(&self.role).unwrap_or(Role::Helpdesk)
    }

    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Accounts made by single sign-on have no password (an empty hash matches none).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }

    pub fn has_two_factor(&self) -> bool {
        self.totp_secret.is_some()
    }
}

/// A password that meets the rules, before hashing.
pub struct NewPassword(SecretString);

impl NewPassword {
    pub fn parse(password: &SecretString, email: &str) -> Result<Self, InvalidInput> {
        let value = password.expose_secret();
        let length = value.chars().count();
        if length < MIN_PASSWORD_LENGTH {
            return Err(InvalidInput::new(format!(
                "Use at least {MIN_PASSWORD_LENGTH} characters; a few words together make a good password."
            )));
        }
        if length > MAX_PASSWORD_LENGTH {
            return Err(InvalidInput::new(format!(
                "A password can be at most {MAX_PASSWORD_LENGTH} characters long."
            )));
        }
        if value.trim().eq_ignore_ascii_case(email.trim()) {
            return Err(InvalidInput::new(
                "The password cannot be the account's email address.",
            ));
        }
        Ok(Self(password.clone()))
    }

    pub fn hash(&self) -> anyhow::Result<String> {
        let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
            .map_err(|e| anyhow::anyhow!("cannot encode a salt: {e}"))?;
        hasher()
            .hash_password(self.0.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    }
}

/// Argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a password against a stored hash. Unknown accounts are checked against a
/// fixed hash, so that a wrong email takes as long as a wrong password.
pub fn verify_password(password: &SecretString, stored_hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        NewPassword(SecretString::from("not-a-real-password-at-all"))
            .hash()
            .unwrap_or_default()
    });
    let hash = stored_hash.unwrap_or(dummy);
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = hasher()
        .verify_password(password.expose_secret().as_bytes(), &parsed)
        .is_ok();
    matches && stored_hash.is_some()
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("an account with this email address already exists")]
    AlreadyExists,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

pub fn create(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    email: &EmailAddress,
    password_hash: &str,
    role: Role,
) -> Result<String, CreateAccountError> {
    let id = uuid::Uuid::now_v7().to_string();
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(&id),
            accounts::email.eq(email.as_str()),
            accounts::email_key.eq(email.key()),
            accounts::password_hash.eq(password_hash),
            accounts::role.eq(role.as_str()),
            accounts::created_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                CreateAccountError::AlreadyExists
            } else {
                CreateAccountError::Database(e)
            }
        })?;
    Ok(id)
}

/// The form of an address that identifies an account.
pub fn email_key(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .filter(accounts::email_key.eq(email_key(email)))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

/// Every account, administrators first, then by address.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<AccountRow>> {
    accounts::table
        .order((accounts::role.asc(), accounts::email_key.asc()))
        .select(AccountRow::as_select())
        .load(conn)
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountChangeError {
    #[error("This is the last active administrator: add or enable another administrator first.")]
    LastAdministrator,
    #[error("There is no such account.")]
    NotFound,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The account, locked for the rest of the transaction on engines that can (on SQLite
/// the write transaction already holds the lock).
fn lock_account(conn: &mut DbConnection, id: &str) -> Result<AccountRow, AccountChangeError> {
    // Not FOR UPDATE: invitations being written by this account take a key-share lock
    // on it (their foreign key), and must not wait for, or deadlock with, this change.
    let row = db::locked!(
        conn,
        for_no_key_update,
        accounts::table.find(id).select(AccountRow::as_select()),
        first
    )
    .optional()?;
    row.ok_or(AccountChangeError::NotFound)
}

/// Locks the target account after every active administrator (in id order, the same
/// in every transaction), so that two administrators demoting each other at once cannot
/// both see the other remain, nor deadlock.
fn lock_for_demotion(conn: &mut DbConnection, id: &str) -> Result<AccountRow, AccountChangeError> {
    let administrators: Vec<String> = db::locked!(
        conn,
        for_no_key_update,
        accounts::table
            .filter(accounts::role.eq(Role::Administrator.as_str()))
            .filter(accounts::disabled_at.is_null())
            .order(accounts::id)
            .select(accounts::id),
        load
    )?;
    let account = lock_account(conn, id)?;
    let is_active_administrator = administrators.iter().any(|a| a == id);
    if is_active_administrator && administrators.len() == 1 {
        return Err(AccountChangeError::LastAdministrator);
    }
    Ok(account)
}

/// Changes an account's role; returns it as it was.
pub fn change_role(
    conn: &mut DbConnection,
    id: &str,
    role: Role,
) -> Result<AccountRow, AccountChangeError> {
    let account = if role.is_administrator() {
        lock_account(conn, id)?
    } else {
        lock_for_demotion(conn, id)?
    };
    diesel::update(accounts::table.find(id))
        .set(accounts::role.eq(role.as_str()))
        .execute(conn)?;
    Ok(account)
}

/// Sets a new password and ends every session of the account.
pub fn reset_password(
    conn: &mut DbConnection,
    id: &str,
    password_hash: &str,
) -> Result<AccountRow, AccountChangeError> {
    let account = lock_account(conn, id)?;
    diesel::update(accounts::table.find(id))
        .set(accounts::password_hash.eq(password_hash))
        .execute(conn)?;
    end_sessions(conn, id)?;
    Ok(account)
}

/// Disables an account and ends its sessions on every instance at once.
pub fn disable(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<AccountRow, AccountChangeError> {
    let account = lock_for_demotion(conn, id)?;
    diesel::update(
        accounts::table
            .find(id)
            .filter(accounts::disabled_at.is_null()),
    )
    .set(accounts::disabled_at.eq(now))
    .execute(conn)?;
    end_sessions(conn, id)?;
    Ok(account)
}

pub fn enable(conn: &mut DbConnection, id: &str) -> Result<AccountRow, AccountChangeError> {
    let account = lock_account(conn, id)?;
    diesel::update(accounts::table.find(id))
        .set(accounts::disabled_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    Ok(account)
}

fn end_sessions(conn: &mut DbConnection, account_id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::account_id.eq(account_id))).execute(conn)
}

pub fn any_exist(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(accounts::table.select(accounts::id))).get_result(conn)
}

/// First-run setup codes: printed in the log while no account exists, exchanged once
/// for the first administrator.
pub mod setup_code {
    use super::*;

    pub const VALID_HOURS: i64 = 24;

    /// A new code like "K7Q2-M9XD-4TRA-PW3H" (80 bits), stored only as a hash.
    pub fn issue(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<String> {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let bytes = crate::crypto::random_bytes::<16>();
        let chars: Vec<char> = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        let code = chars
            .chunks(4)
            .map(|group| group.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-");
        diesel::insert_into(setup_codes::table)
            .values((
                setup_codes::code_hash.eq(hash(&code)),
                setup_codes::created_at.eq(now),
                setup_codes::expires_at.eq(now + chrono::TimeDelta::hours(VALID_HOURS)),
            ))
            .execute(conn)?;
        Ok(code)
    }

    /// Whether `code` is a live setup code; spaces and case do not matter.
    pub fn is_valid(conn: &mut DbConnection, code: &str, now: NaiveDateTime) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            setup_codes::table
                .filter(setup_codes::code_hash.eq(hash(code)))
                .filter(setup_codes::expires_at.gt(now)),
        ))
        .get_result(conn)
    }

    /// Uses up a live code, and every other one with it: true when this call deleted it.
    /// All live codes are locked first, in one order, so that set-ups with the same code
    /// or with different ones take turns; the one that goes second finds none left.
    pub fn consume(conn: &mut DbConnection, code: &str, now: NaiveDateTime) -> QueryResult<bool> {
        let live: Vec<String> = db::locked!(
            conn,
            for_update,
            setup_codes::table
                .filter(setup_codes::expires_at.gt(now))
                .order(setup_codes::code_hash)
                .select(setup_codes::code_hash),
            load
        )?;
        let code_hash = hash(code);
        if !live.contains(&code_hash) {
            return Ok(false);
        }
        let deleted =
            diesel::delete(setup_codes::table.filter(setup_codes::code_hash.eq(&code_hash)))
                .execute(conn)?;
        clear(conn)?;
        Ok(deleted == 1)
    }

    pub fn clear(conn: &mut DbConnection) -> QueryResult<usize> {
        diesel::delete(setup_codes::table).execute(conn)
    }

    fn hash(code: &str) -> String {
        let normalized: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        crate::crypto::sha256_hex(normalized.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_checked_and_verified() {
        let email = "ada@example.com";
        assert!(NewPassword::parse(&SecretString::from("short"), email).is_err());
        assert!(NewPassword::parse(&SecretString::from("ADA@example.com"), email).is_err());
        let password = SecretString::from("correct horse battery staple");
        let hash = NewPassword::parse(&password, email)
            .unwrap()
            .hash()
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&password, Some(&hash)));
        assert!(!verify_password(
            &SecretString::from("wrong horse battery staple"),
            Some(&hash)
        ));
        assert!(!verify_password(&password, None));
    }
}
