//! DKIM: every kind of email Enroll sends (invitation, resend, reminder) carries a
//! signature that an independent verifier (mail-auth, not lettre) passes against the
//! public key as DNS would publish it, with RSA and Ed25519 keys, whether the email went
//! through SMTP or into an .eml file; and the same verifier fails it once a signed header
//! or the body is changed, or against another key.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::TimeDelta;
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};

use crate::support::*;

const DOMAIN: &str = "example.com";
const SELECTOR: &str = "enroll2026";
const KEY_FILE: &str = "dkim.key";

/// A key file as an operator would write it, and the TXT record that publishes it.
struct TestKey {
    file: String,
    txt_record: String,
}

#[derive(Clone, Copy)]
enum KeyFile {
    RsaPkcs1,
    RsaPkcs8,
    Ed25519Pkcs8,
    /// lettre's own format: the 32-byte seed in base64.
    Ed25519Seed,
}

/// One 2048-bit RSA key for the whole run: generating one takes a while.
fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
}

fn ed25519_key() -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

impl TestKey {
    fn new(kind: KeyFile) -> Self {
        match kind {
            KeyFile::RsaPkcs1 | KeyFile::RsaPkcs8 => {
                let key = rsa_key();
                let file = match kind {
                    KeyFile::RsaPkcs1 => key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap(),
                    _ => key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap(),
                };
                let public = key.to_public_key().to_public_key_der().unwrap();
                Self {
                    file: file.to_string(),
                    txt_record: format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(public.as_bytes())),
                }
            }
            KeyFile::Ed25519Pkcs8 | KeyFile::Ed25519Seed => {
                use ed25519_dalek::pkcs8::EncodePrivateKey as _;
                let key = ed25519_key();
                let file = match kind {
                    KeyFile::Ed25519Seed => STANDARD.encode(key.to_bytes()),
                    _ => key
                        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                        .unwrap()
                        .to_string(),
                };
                Self {
                    file,
                    txt_record: format!(
                        "v=DKIM1; k=ed25519; p={}",
                        STANDARD.encode(key.verifying_key().to_bytes())
                    ),
                }
            }
        }
    }

    fn algorithm(&self) -> &'static str {
        if self.txt_record.contains("k=rsa") {
            "a=rsa-sha256"
        } else {
            "a=ed25519-sha256"
        }
    }
}

/// DNS as the verifier sees it: only the TXT records a test publishes.
struct PublishedKeys(HashMap<Box<str>, Txt>);

impl PublishedKeys {
    fn with(txt_record: &str) -> Self {
        let name = format!("{SELECTOR}._domainkey.{DOMAIN}.");
        let record = DomainKey::parse(txt_record.as_bytes()).expect("a valid DKIM record");
        Self(HashMap::from([(name.into_boxed_str(), record.into())]))
    }
}

impl ResolverCache<Box<str>, Txt> for PublishedKeys {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: Instant) {}
}

/// What mail-auth makes of each DKIM signature in `raw`, looking keys up in `keys` only.
async fn verify(raw: &str, keys: &PublishedKeys) -> Vec<DkimResult> {
    // Every record the verifier needs is in `keys`; should it ask anyway, the question
    // goes to loopback, never out.
    let nowhere = ResolverConfig::from_parts(
        None,
        vec![],
        vec![NameServerConfig::udp_and_tcp([127, 0, 0, 1].into())],
    );
    let verifier = MessageAuthenticator::new(nowhere, ResolverOpts::default()).unwrap();
    let message = AuthenticatedMessage::parse(raw.as_bytes()).expect("a parseable email");
    verifier
        .verify_dkim(Parameters::new(&message).with_txt_cache(keys))
        .await
        .into_iter()
        .map(|output| output.result().clone())
        .collect()
}

/// `raw` carries one signature, for DOMAIN by SELECTOR over the headers a receiver relies
/// on, and it passes; changing a signed header or the body, or another key in DNS, fails.
async fn assert_signed(raw: &str, key: &TestKey, what: &str) {
    let email = ReceivedEmail {
        to: Vec::new(),
        raw: raw.to_owned(),
        received_at: Instant::now(),
    };
    let signature = email
        .header("DKIM-Signature")
        .unwrap_or_else(|| panic!("the {what} is not signed"))
        .split_whitespace()
        .collect::<String>()
        // Header names in h= are case-insensitive.
        .to_ascii_lowercase();
    for tag in [
        "v=1;",
        key.algorithm(),
        "c=relaxed/relaxed;",
        "d=example.com;",
        "s=enroll2026;",
        "h=from:to:subject:date:message-id:mime-version:content-type:reply-to;",
    ] {
        assert!(signature.contains(tag), "{what}: {signature} lacks {tag}");
    }
    assert!(
        email.header("Reply-To").is_some(),
        "{what} has a Reply-To to sign"
    );

    let keys = PublishedKeys::with(&key.txt_record);
    assert_eq!(
        verify(raw, &keys).await,
        [DkimResult::Pass],
        "the {what} does not verify:\n{raw}"
    );

    let subject_changed = raw.replacen("\r\nSubject: ", "\r\nSubject: Re: ", 1);
    let body_start = raw.find("\r\n\r\n").expect("a body") + 4;
    let link_at = body_start + raw[body_start..].find("/enroll/").expect("a link");
    let mut body_changed = raw.to_owned();
    body_changed.replace_range(link_at..link_at + "/enroll/".len(), "/enr0ll/");
    assert!(subject_changed != raw && body_changed != raw, "{raw}");
    let other_key = PublishedKeys::with(&TestKey::new(KeyFile::Ed25519Seed).txt_record);
    for (change, raw, keys) in [
        ("a changed Subject", subject_changed.as_str(), &keys),
        ("a changed link in the body", body_changed.as_str(), &keys),
        ("another key in DNS", raw, &other_key),
    ] {
        let results = verify(raw, keys).await;
        assert_eq!(results.len(), 1, "{what} with {change}: {results:?}");
        assert_ne!(
            results[0],
            DkimResult::Pass,
            "the {what} verifies with {change}"
        );
    }
}

/// How a test reads what the app sent.
#[derive(Clone, Copy)]
enum Delivery {
    Smtp,
    Files,
}

/// Starts an app that signs with `key`, and has it send an invitation, a resend and a
/// reminder; returns the three emails as delivered, in that order.
async fn send_every_kind(key: &TestKey, delivery: Delivery) -> Vec<(&'static str, String)> {
    let data = TestData::new(current_engine());
    std::fs::write(data.path().join(KEY_FILE), &key.file).unwrap();
    let app = spawn_app_with(AppOptions {
        mail_to_files: matches!(delivery, Delivery::Files),
        data: Some(Arc::clone(&data)),
        tweak: Some(|config| {
            config.dkim_domain = Some(DOMAIN.to_owned());
            config.dkim_selector = Some(SELECTOR.to_owned());
            config.dkim_key_file = Some(config.data_dir.join(KEY_FILE));
        }),
        ..AppOptions::default()
    })
    .await;
    app.set_up_invitations_with(&[("reminder_days", "2")]).await;
    app.invite(&[("Ada", "Lovelace", "ada@example.com")])
        .await
        .assert_redirect_to("/users");
    let invitation = nth_email(&app, delivery, 1).await;
    // A resend cancels an email still queued, so it waits for the first.
    app.act_on_users("/users/resend", &[app.user_id("ada@example.com")], &[])
        .await
        .assert_redirect_to("/users");
    let resend = nth_email(&app, delivery, 2).await;
    // The reminder goes two days before the resent link expires (valid 7 days).
    app.clock
        .advance(TimeDelta::days(5) + TimeDelta::minutes(1));
    let reminder = nth_email(&app, delivery, 3).await;
    vec![
        ("invitation", invitation),
        ("resent invitation", resend),
        ("reminder", reminder),
    ]
}

/// The `n`-th email the app sent (1-based), as the SMTP server received it or as the
/// file transport wrote it: the app sends what is due, then the test reads it.
async fn nth_email(app: &TestApp, delivery: Delivery, n: usize) -> String {
    app.deliver_due_emails().await;
    match delivery {
        Delivery::Smtp => app.smtp.received()[n - 1].raw.clone(),
        Delivery::Files => {
            let mut files: Vec<_> = std::fs::read_dir(app.data_dir.join("mail"))
                .unwrap()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "eml"))
                .collect();
            assert_eq!(files.len(), n, "one .eml file per email sent");
            // Each email is sent before the next is asked for: the n-th is the newest.
            files.sort_by_key(|file| file.metadata().and_then(|m| m.modified()).unwrap());
            ReceivedEmail::from_file(&files[n - 1]).raw
        }
    }
}

async fn every_kind_verifies(kind: KeyFile, delivery: Delivery) {
    let key = TestKey::new(kind);
    let emails = send_every_kind(&key, delivery).await;
    assert!(
        emails[2].1.contains("Subject: Reminder: "),
        "{}",
        emails[2].1
    );
    for (what, raw) in &emails {
        assert_signed(raw, &key, what).await;
    }
}

on_both_engines! {
    async fn rsa_signed_email_verifies_through_smtp() {
        every_kind_verifies(KeyFile::RsaPkcs1, Delivery::Smtp).await;
    }
}

on_both_engines! {
    async fn ed25519_signed_email_verifies_through_smtp() {
        every_kind_verifies(KeyFile::Ed25519Pkcs8, Delivery::Smtp).await;
    }
}

on_both_engines! {
    async fn rsa_signed_eml_files_verify() {
        every_kind_verifies(KeyFile::RsaPkcs8, Delivery::Files).await;
    }
}

on_both_engines! {
    async fn ed25519_signed_eml_files_verify() {
        every_kind_verifies(KeyFile::Ed25519Seed, Delivery::Files).await;
    }
}
