//! Two-factor sign-in for password accounts: TOTP (RFC 6238: SHA-1, 6 digits, 30-second
//! steps, as every authenticator app reads from an `otpauth://` QR code) through the
//! `totp-rs` crate, single-use recovery codes, and the console-wide requirement.
//!
//! The secret is stored sealed ([`Sealer`], key derived from the session secret, outside
//! the database). The last accepted time step is stored with it, so that a code (and
//! any earlier one) is accepted once only, on every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use totp_rs::{Algorithm, TOTP};

use crate::crypto::{self, Sealer};
use crate::db::DbConnection;
use crate::db::schema::{accounts, recovery_codes, sign_in_policy};

pub const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// Codes from the step before and after are accepted too (clocks drift; typing takes time).
const SKEW_STEPS: u64 = 1;
pub const RECOVERY_CODES: usize = 10;
/// Without look-alike characters (0/o, 1/l/i), as they are copied from paper.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// What the secret's seal is bound to, with the account id.
const SEAL_PURPOSE: &str = "totp-secret";

/// A TOTP secret (160 bits, RFC 4226's recommended length), before it is stored.
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> Self {
        Self(crypto::random_bytes::<20>().to_vec())
    }

    fn totp(&self, issuer: &str, account: &str) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECONDS,
            self.0.clone(),
            Some(issuer.replace(':', " ")),
            account.to_owned(),
        )
    }

    /// Base32 without padding, as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        self.totp("", "").get_secret_base32()
    }

    /// The `otpauth://` URI an authenticator app reads from the QR code.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account).get_url()
    }

    /// The QR code of the `otpauth://` URI, as inline SVG made here (no outside service).
    pub fn qr_svg(&self, issuer: &str, account: &str) -> Option<String> {
        let code = qrcode::QrCode::new(self.otpauth_uri(issuer, account).as_bytes()).ok()?;
        let svg = code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build();
        // Inline in HTML: no XML declaration, and a name for screen readers.
        let start = svg.find("<svg")?;
        Some(svg[start..].replacen(
            "<svg",
            "<svg role=\"img\" aria-label=\"QR code for your authenticator app\"",
            1,
        ))
    }

    /// The time step `code` belongs to, within the accepted skew of `unix_now`.
    pub fn matching_step(&self, code: &str, unix_now: u64) -> Option<i64> {
        let totp = self.totp("", "");
        let now_step = unix_now / STEP_SECONDS;
        (now_step.saturating_sub(SKEW_STEPS)..=now_step + SKEW_STEPS)
            .find(|step| {
                crypto::constant_time_eq(
                    totp.generate(step * STEP_SECONDS).as_bytes(),
                    code.as_bytes(),
                )
            })
            .and_then(|step| i64::try_from(step).ok())
    }

    pub fn seal(&self, sealer: &Sealer, account_id: &str) -> String {
        sealer.seal(&format!("{SEAL_PURPOSE}:{account_id}"), &self.0)
    }

    pub fn open(sealer: &Sealer, account_id: &str, sealed: &str) -> Option<Self> {
        sealer
            .open(&format!("{SEAL_PURPOSE}:{account_id}"), sealed)
            .filter(|bytes| bytes.len() >= 16)
            .map(Self)
    }
}

/// What was typed in the "Code" field: six digits, or else a recovery code.
pub enum TypedCode {
    Totp(String),
    Recovery(String),
}

impl TypedCode {
    pub fn parse(typed: &str) -> Self {
        let compact: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if compact.len() == DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
            Self::Totp(compact)
        } else {
            Self::Recovery(compact.to_ascii_lowercase())
        }
    }
}

/// Ten new recovery codes, as shown to the person (`xxxxx-xxxxx`, 50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = crypto::random_bytes::<10>();
            let chars: String = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// Random, high-entropy codes need no slow hash; the account id keeps equal codes of two
/// accounts apart.
fn recovery_hash(account_id: &str, compact_code: &str) -> String {
    crypto::sha256_hex(format!("{account_id}:{compact_code}").as_bytes())
}

/// Turns two-factor on for an account (replacing any earlier secret and codes). `step`
/// is that of the code that confirmed it, so that code cannot be used to sign in.
pub fn enable(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    account_id: &str,
    sealed_secret: &str,
    step: i64,
    codes: &[String],
) -> QueryResult<()> {
    diesel::update(accounts::table.find(account_id))
        .set((
            accounts::totp_secret.eq(sealed_secret),
            accounts::totp_last_step.eq(step),
        ))
        .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(account_id)))
        .execute(conn)?;
    for code in codes {
        let compact: String = code.chars().filter(|c| *c != '-').collect();
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::code_hash.eq(recovery_hash(account_id, &compact)),
                recovery_codes::account_id.eq(account_id),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Turns two-factor off (an administrator's reset); returns whether it was on.
pub fn disable(conn: &mut DbConnection, account_id: &str) -> QueryResult<bool> {
    let changed = diesel::update(
        accounts::table
            .find(account_id)
            .filter(accounts::totp_secret.is_not_null()),
    )
    .set((
        accounts::totp_secret.eq(None::<String>),
        accounts::totp_last_step.eq(None::<i64>),
    ))
    .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(account_id)))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Records `step` as used, if no later or equal step was: false means the code (or a
/// later one) was accepted already. One conditional update, so two instances cannot
/// both accept it.
pub fn use_step(conn: &mut DbConnection, account_id: &str, step: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        accounts::table
            .find(account_id)
            .filter(accounts::totp_secret.is_not_null())
            .filter(
                accounts::totp_last_step
                    .is_null()
                    .or(accounts::totp_last_step.lt(step)),
            ),
    )
    .set(accounts::totp_last_step.eq(step))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Uses up a recovery code; returns how many remain, or none when it was not one.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    account_id: &str,
    compact_code: &str,
) -> QueryResult<Option<i64>> {
    let changed = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::code_hash.eq(recovery_hash(account_id, compact_code)))
            .filter(recovery_codes::account_id.eq(account_id))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)?;
    if changed != 1 {
        return Ok(None);
    }
    let left = recovery_codes::table
        .filter(recovery_codes::account_id.eq(account_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(Some(left))
}

/// Whether every password account must use a second factor.
pub fn required(conn: &mut DbConnection) -> QueryResult<bool> {
    let value: Option<i32> = sign_in_policy::table
        .find(1)
        .select(sign_in_policy::require_two_factor)
        .first(conn)
        .optional()?;
    Ok(value.unwrap_or(0) != 0)
}

pub fn set_required(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    by: Option<&str>,
    required: bool,
) -> QueryResult<()> {
    let value = i32::from(required);
    let changed = diesel::update(sign_in_policy::table.find(1))
        .set((
            sign_in_policy::require_two_factor.eq(value),
            sign_in_policy::updated_at.eq(now),
            sign_in_policy::updated_by.eq(by),
        ))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(sign_in_policy::table)
            .values((
                sign_in_policy::id.eq(1),
                sign_in_policy::require_two_factor.eq(value),
                sign_in_policy::updated_at.eq(now),
                sign_in_policy::updated_by.eq(by),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_its_neighbours_only() {
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        // RFC 6238, appendix B, SHA-1 (8 digits there; the last 6 here).
        assert_eq!(secret.matching_step("287082", 59), Some(1));
        assert_eq!(secret.matching_step("081804", 1111111109), Some(37037036));
        assert_eq!(
            secret.matching_step("081804", 1111111109 + 30),
            Some(37037036)
        );
        assert_eq!(secret.matching_step("081804", 1111111109 + 90), None);
        assert_eq!(secret.matching_step("000000", 59), None);
    }

    #[test]
    fn typed_codes_are_told_apart() {
        assert!(matches!(TypedCode::parse(" 123 456 "), TypedCode::Totp(c) if c == "123456"));
        assert!(
            matches!(TypedCode::parse("ABCDE-fghjk"), TypedCode::Recovery(c) if c == "abcdefghjk")
        );
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
        );
    }

    #[test]
    fn the_qr_code_is_inline_svg_of_the_otpauth_uri() {
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri("Enroll: Example", "a@example.com");
        assert!(uri.starts_with("otpauth://totp/"));
        assert!(uri.contains(&format!("secret={}", secret.base32())));
        let svg = secret.qr_svg("Enroll", "a@example.com").unwrap();
        assert!(svg.starts_with("<svg role=\"img\""));
    }
}
