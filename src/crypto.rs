//! Random secrets and hashes, from the operating system's random source.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// `N` bytes from the OS random source. Failing to read it leaves nothing safe to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Lower-case hex SHA-256, how tokens and session ids are looked up without being stored.
pub fn sha256_hex(input: &[u8]) -> String {
    hex::encode(Sha256::digest(input))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Seals short secrets kept in the database (TOTP secrets, PKCE verifiers) or handed to
/// the browser (a half-done sign-in), with a key derived (HKDF-SHA256) from the session
/// secret, which lives outside the database. AES-256-GCM, a random nonce per value, and
/// associated data naming what the value belongs to, so that it cannot be moved.
/// AES-GCM's 96-bit nonce.
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer(aes_gcm::Aes256Gcm);

impl Sealer {
    /// `info` keeps each use's key apart from the others derived from the same secret.
    pub fn derive(secret: &[u8], info: &[u8]) -> Self {
        use aes_gcm::KeyInit;
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, secret)
            .expand(info, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(aes_gcm::Aes256Gcm::new(&key.into()))
    }

    /// A key nobody else holds (the command line, which seals nothing lasting).
    pub fn ephemeral() -> Self {
        Self::derive(&random_bytes::<32>(), b"ephemeral")
    }

    /// `plain` sealed for `associated`, as base64url text.
    pub fn seal(&self, associated: &str, plain: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.seal_bytes(associated, plain))
    }

    /// The value sealed for `associated`; none when altered, moved or sealed by another key.
    pub fn open(&self, associated: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
        self.open_bytes(associated, &bytes)
    }

    /// The nonce followed by the ciphertext: callers that keep another text encoding
    /// (queued email bodies) encode these bytes their own way.
    pub fn seal_bytes(&self, associated: &str, plain: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, Payload};
        let nonce = random_bytes::<NONCE_LEN>();
        let sealed = self
            .0
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: associated.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any short value");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        bytes
    }

    /// The inverse of [`Self::seal_bytes`].
    pub fn open_bytes(&self, associated: &str, bytes: &[u8]) -> Option<Vec<u8>> {
        use aes_gcm::aead::{Aead, Payload};
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(
                aes_gcm::Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: associated.as_bytes(),
                },
            )
            .ok()
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_purpose() {
        let key = Sealer::derive(b"a session secret of thirty-two bytes!", b"test");
        let sealed = key.seal("account-1", b"secret");
        assert_eq!(
            key.open("account-1", &sealed).as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(key.open("account-2", &sealed), None);
        let other = Sealer::derive(b"a session secret of thirty-two bytes!", b"other");
        assert_eq!(other.open("account-1", &sealed), None);
        assert_eq!(key.open("account-1", "not base64!"), None);
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
