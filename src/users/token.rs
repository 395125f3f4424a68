//! Enrollment tokens: 32 random bytes, base64url in the link, looked up by SHA-256.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto;

/// A token as it travels in a link. Never logged; the invitations table keeps only its
/// SHA-256. The link also sits in the body of the queued email until that email is sent
/// (a reminder waits there until it is due), but sealed with a key kept outside the
/// database (`mail::seal`), and the body is erased once sent: the database alone never
/// yields a usable link.
pub struct EnrollmentToken(SecretString);

impl EnrollmentToken {
    pub fn generate() -> Self {
        Self(SecretString::from(crypto::random_token()))
    }

    /// Accepts only the shape we hand out, so junk never reaches the database.
    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = input.len() == 43
            && input
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        well_formed.then(|| Self(SecretString::from(input.to_owned())))
    }

    pub fn hash(&self) -> String {
        crypto::sha256_hex(self.0.expose_secret().as_bytes())
    }

    /// The link an invitee follows, built from the configured public URL only.
    pub fn link(&self, public_url: &str) -> String {
        format!(
            "{}/enroll/{}",
            public_url.trim_end_matches('/'),
            self.0.expose_secret()
        )
    }
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_alike() {
        let token = EnrollmentToken::generate();
        let link = token.link("https://enroll.example.com/");
        let text = link.rsplit('/').next().unwrap();
        assert!(link.starts_with("https://enroll.example.com/enroll/"));
        assert_eq!(EnrollmentToken::parse(text).unwrap().hash(), token.hash());
        assert!(!format!("{token:?}").contains(text));
    }

    #[test]
    fn junk_is_not_a_token() {
        for junk in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
            "../../etc/passwd",
        ] {
            assert!(EnrollmentToken::parse(junk).is_none(), "{junk}");
        }
    }
}
