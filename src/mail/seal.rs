//! Sealing queued email bodies, which hold live enrollment links, so that the database
//! (or a backup of it) alone never yields a usable link.
//!
//! AES-256-GCM with a random 96-bit nonce per value, and the email's id as associated
//! data, so that a sealed body cannot be moved to another row (another recipient). The
//! key is derived (HKDF-SHA256) from the session secret, which lives outside the
//! database: `ENROLL_SESSION_KEY`, or `<data dir>/session.key`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// Marks a sealed value; bodies queued by versions before sealing have no prefix.
pub(super) const PREFIX: &str = "sealed-v1:";
/// Keeps this key apart from the cookie keys derived from the same secret.
const INFO: &[u8] = b"enroll outbox bodies v1";

/// The key that seals queued email bodies. Cheap to clone; never printed.
#[derive(Clone)]
pub struct MailKey(crate::crypto::Sealer);

impl MailKey {
    /// The key for this session secret: every instance sharing the secret shares it.
    pub fn derive(secret: &[u8]) -> Self {
        Self::derive_for(secret, INFO)
    }

    /// A key for another purpose (`info` names it), derived from the same secret but
    /// unrelated to the others: access key secrets are sealed with one.
    pub fn derive_for(secret: &[u8], info: &[u8]) -> Self {
        Self(crate::crypto::Sealer::derive(secret, info))
    }

    /// A key nobody else holds, for a process that queues no email (the command line):
    /// anything it did queue could never be opened, rather than be readable.
    pub fn ephemeral() -> Self {
        Self::derive(&crate::crypto::random_bytes::<32>())
    }

    /// `plain`, sealed for the email `email_id`, as text for a TEXT column.
    pub fn seal(&self, email_id: &str, plain: &str) -> String {
        let bytes = self.0.seal_bytes(email_id, plain.as_bytes());
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }

    /// Whether a stored value was sealed (rather than kept as it is).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// The body sealed for `email_id`. A value without the prefix was queued before
    /// bodies were sealed and is returned as it is.
    pub fn open(&self, email_id: &str, stored: &str) -> Result<String, OpenError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = STANDARD_NO_PAD.decode(encoded).map_err(|_| OpenError)?;
        let plain = self.0.open_bytes(email_id, &bytes).ok_or(OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

impl std::fmt::Debug for MailKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailKey(..)")
    }
}

/// A sealed body that this key cannot open: sealed under another session secret (the
/// key was changed while the email was queued), or altered in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the queued email cannot be decrypted: the session key (ENROLL_SESSION_KEY or session.key) \
     changed since it was queued, or the row was altered; resend the invitation"
)]
pub struct OpenError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bodies_open_only_with_their_key_and_email() {
        let key = MailKey::derive(b"a session secret of at least thirty-two bytes");
        let sealed = key.seal("email-1", "https://x.example/enroll/TOKEN");
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("TOKEN"));
        assert_eq!(
            key.open("email-1", &sealed).unwrap(),
            "https://x.example/enroll/TOKEN"
        );
        // Same plaintext, fresh nonce.
        assert_ne!(
            sealed,
            key.seal("email-1", "https://x.example/enroll/TOKEN")
        );
        assert_eq!(key.open("email-2", &sealed), Err(OpenError));
        let other = MailKey::derive(b"another session secret of thirty-two bytes");
        assert_eq!(other.open("email-1", &sealed), Err(OpenError));
        assert_eq!(key.open("email-1", "sealed-v1:AAAA"), Err(OpenError));
        assert_eq!(key.open("email-1", "legacy body").unwrap(), "legacy body");
        assert_eq!(format!("{key:?}"), "MailKey(..)");
    }
}
