//! DKIM: the signing key, how messages are signed, and the DNS record that publishes
//! the key.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use secrecy::{ExposeSecret as _, SecretString};

/// The headers a receiver shows or relies on. A listed header that a message lacks is
/// signed as absent (RFC 6376, 5.4), so that one cannot be added on the way.
const SIGNED_HEADERS: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
];

/// The key file formats, for error messages and the README.
pub const KEY_FORMATS: &str = "an RSA key in PEM (PKCS#1 \"BEGIN RSA PRIVATE KEY\" or PKCS#8 \
     \"BEGIN PRIVATE KEY\"), or an Ed25519 key in PKCS#8 PEM or as its 32-byte seed in base64";

/// RFC 8301: verifiers ignore signatures by shorter RSA keys.
const MIN_RSA_BITS: usize = 1024;

/// A private key to sign with, and the public half to publish.
pub struct DkimKey {
    signing: DkimSigningKey,
    algorithm: DkimSigningAlgorithm,
    /// What the DNS record's p= carries: the SubjectPublicKeyInfo (DER) for RSA
    /// (RFC 6376, 3.6.1), the bare 32 bytes for Ed25519 (RFC 8463, 4.2).
    public_key: Vec<u8>,
}

impl DkimKey {
    pub fn read(key_file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(key_file)
            .with_context(|| format!("cannot read the DKIM key {}", key_file.display()))?;
        Self::parse(&text).map_err(|reason| {
            anyhow::anyhow!(
                "{} is not a DKIM key ({KEY_FORMATS}): {reason}",
                key_file.display()
            )
        })
    }

    /// `text` is the key file's content; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .map_err(|e| format!("not a readable PKCS#1 RSA key ({e})"))?;
            Self::rsa(&key)
        } else if text.starts_with("-----BEGIN PRIVATE KEY-----") {
            // PKCS#8 names its algorithm inside; each parser refuses the other's keys.
            if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(text) {
                Self::rsa(&key)
            } else if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
                Self::ed25519(&key)
            } else {
                Err("a PKCS#8 key that is neither a readable RSA nor Ed25519 key".to_owned())
            }
        } else if text.starts_with("-----BEGIN") {
            let kind = text.lines().next().unwrap_or_default();
            Err(format!(
                "{kind} is not a supported kind (an encrypted key must be decrypted first)"
            ))
        } else {
            let seed = STANDARD
                .decode(text)
                .map_err(|_| "neither PEM nor base64".to_owned())?;
            let seed: [u8; 32] = seed.try_into().map_err(|seed: Vec<u8>| {
                format!(
                    "an Ed25519 seed in base64 is 32 bytes, this one is {}",
                    seed.len()
                )
            })?;
            Self::ed25519(&ed25519_dalek::SigningKey::from_bytes(&seed))
        }
    }

    fn rsa(key: &rsa::RsaPrivateKey) -> Result<Self, String> {
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "a {bits}-bit RSA key is too short; receivers ignore signatures by keys \
                 under {MIN_RSA_BITS} bits (2048 is usual)"
            ));
        }
        // lettre reads RSA keys in PKCS#1 only, so a PKCS#8 key is handed over in that form.
        let pkcs1 = key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map_err(|e| format!("cannot convert the RSA key ({e})"))?;
        let signing = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|e| format!("lettre refused the RSA key ({e})"))?;
        let public_key = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| format!("cannot encode the public key ({e})"))?
            .into_vec();
        Ok(Self {
            signing,
            algorithm: DkimSigningAlgorithm::Rsa,
            public_key,
        })
    }

    fn ed25519(key: &ed25519_dalek::SigningKey) -> Result<Self, String> {
        // lettre reads Ed25519 keys as the base64 of their 32-byte seed.
        let seed = SecretString::from(STANDARD.encode(key.to_bytes()));
        let signing = DkimSigningKey::new(seed.expose_secret(), DkimSigningAlgorithm::Ed25519)
            .map_err(|e| format!("lettre refused the Ed25519 key ({e})"))?;
        Ok(Self {
            signing,
            algorithm: DkimSigningAlgorithm::Ed25519,
            public_key: key.verifying_key().to_bytes().to_vec(),
        })
    }

    /// The text of the TXT record to publish at `selector._domainkey.domain`.
    pub fn txt_record(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm,
            STANDARD.encode(&self.public_key)
        )
    }

    /// How every message is signed. Relaxed header canonicalization because lettre hashes
    /// the DKIM-Signature header folded one way and sends it folded another (it folds
    /// again once b= is filled in): only unfolded, as relaxed compares them, are the two
    /// the same.
    pub fn into_config(self, domain: &str, selector: &str) -> DkimConfig {
        DkimConfig::new(
            selector.to_owned(),
            domain.to_owned(),
            self.signing,
            SIGNED_HEADERS
                .iter()
                .map(|name| HeaderName::new_from_ascii_str(name))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        )
    }
}

/// The text of the DNS TXT record that publishes the key in `key_file`
/// (`v=DKIM1; k=rsa; p=…`), for an operator to publish at [`txt_record_name`].
pub fn dkim_txt_record(key_file: &Path) -> anyhow::Result<String> {
    Ok(DkimKey::read(key_file)?.txt_record())
}

/// Where receivers look the key up.
pub fn txt_record_name(domain: &str, selector: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test-only keys: see tests/keys/README.md.
    const RSA_PKCS1: &str = include_str!("../../tests/keys/rsa1024-pkcs1.pem");
    const RSA_PKCS8: &str = include_str!("../../tests/keys/rsa1024-pkcs8.pem");
    const RSA_512: &str = include_str!("../../tests/keys/rsa512-pkcs1.pem");
    const ED25519_PKCS8: &str = include_str!("../../tests/keys/ed25519-rfc8463-pkcs8.pem");
    /// RFC 8463, appendix A: the example key's seed and its published record.
    const ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const ED25519_RECORD: &str =
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    /// `openssl pkey -in rsa1024-pkcs8.pem -pubout -outform DER | base64 -w0`
    const RSA_RECORD: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC4mcm5TXlAg0ytaixwdKbtBNQLRSny3V3/KE2rK87AzB4OkPCAbMAo02LybjpNEWlKrvdm7rt6hDP4jLnNtJD2LF1DPxRSoO6yLo3AGns5zig8yrZLfq+IX7jQwPiLu8SHA+c8puxiUleD7H4o3JP6Ev7Jh3MUVwWUAIhUdlld6wIDAQAB";

    fn record(text: &str) -> String {
        DkimKey::parse(text).unwrap().txt_record()
    }

    #[test]
    fn the_rsa_record_is_the_public_key_openssl_derives() {
        assert_eq!(record(RSA_PKCS1), RSA_RECORD);
        assert_eq!(record(RSA_PKCS8), RSA_RECORD, "PKCS#8 is the same key");
    }

    #[test]
    fn the_ed25519_record_is_the_one_rfc_8463_publishes() {
        assert_eq!(record(ED25519_SEED), ED25519_RECORD);
        assert_eq!(record(&format!("{ED25519_SEED}\n")), ED25519_RECORD);
        assert_eq!(
            record(ED25519_PKCS8),
            ED25519_RECORD,
            "PKCS#8 is the same key"
        );
    }

    #[test]
    fn the_record_is_read_from_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dkim.key");
        std::fs::write(&file, RSA_PKCS1).unwrap();
        assert_eq!(dkim_txt_record(&file).unwrap(), RSA_RECORD);
        assert_eq!(
            txt_record_name("example.com", "enroll2026"),
            "enroll2026._domainkey.example.com"
        );
        let missing = dkim_txt_record(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read the DKIM key"));
    }

    #[test]
    fn what_cannot_sign_is_refused_and_said_why() {
        for (text, reason) in [
            (RSA_512, "512-bit RSA key is too short"),
            ("bm90IGEga2V5", "32 bytes, this one is 9"),
            ("not a key!", "neither PEM nor base64"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "must be decrypted first",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "neither a readable RSA nor Ed25519 key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
                "not a readable PKCS#1 RSA key",
            ),
        ] {
            let error = DkimKey::parse(text).err().expect(text);
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
