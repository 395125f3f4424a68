//! Where email goes: an SMTP server, or .eml files for the embedded default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lettre::{FileTransport, Message, SmtpTransport, Transport};
use secrecy::{ExposeSecret, SecretString};

pub enum Mailer {
    Smtp(SmtpTransport),
    Files {
        transport: FileTransport,
        dir: PathBuf,
    },
}

/// Why an email was not sent, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server was unreachable, slow, or answered 4xx: try again later.
    Transient(String),
    /// The server answered 5xx, or the message cannot be built: retrying cannot help.
    Permanent(String),
}

impl Mailer {
    pub fn smtp(url: &SecretString, timeout: Duration) -> anyhow::Result<Self> {
        // lettre's error for a bad URL does not echo it; keep it that way (it may hold a password).
        let transport = SmtpTransport::from_url(url.expose_secret())
            .context("ENROLL_SMTP_URL is not a valid smtp:// or smtps:// URL")?
            .timeout(Some(timeout))
            .build();
        Ok(Self::Smtp(transport))
    }

    pub fn files(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the mail folder {}", dir.display()))?;
        Ok(Self::Files {
            transport: FileTransport::new(dir),
            dir: dir.to_owned(),
        })
    }

    pub fn writes_files(&self) -> bool {
        matches!(self, Self::Files { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "SMTP (ENROLL_SMTP_URL)".to_owned(),
            Self::Files { dir, .. } => format!(".eml files in {}", dir.display()),
        }
    }

    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        match self {
            Self::Smtp(transport) => transport.send(message).map(drop).map_err(|e| {
                let reason = smtp_reason(&e);
                if e.is_permanent() {
                    SendError::Permanent(reason)
                } else {
                    SendError::Transient(reason)
                }
            }),
            Self::Files { transport, .. } => transport
                .send(message)
                .map(drop)
                .map_err(|e| SendError::Transient(format!("cannot write the email file: {e}"))),
        }
    }
}

/// The server's own words where there are some ("550 Mailbox unavailable").
fn smtp_reason(error: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason.chars().take(500).collect()
}
