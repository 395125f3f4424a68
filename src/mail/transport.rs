//! Where email goes: an SMTP server, or .eml files for the embedded default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lettre::message::dkim::DkimConfig;
use lettre::transport::smtp::PoolConfig;
use lettre::{FileTransport, Message, SmtpTransport, Transport as _};
use secrecy::{ExposeSecret, SecretString};

use super::dkim::DkimKey;

pub struct Mailer {
    transport: Transport,
    dkim: Option<DkimConfig>,
}

enum Transport {
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
    /// `connections`: how many SMTP connections are kept open for reuse.
    pub fn smtp(url: &SecretString, timeout: Duration, connections: u32) -> anyhow::Result<Self> {
        Ok(Self::new(Transport::smtp(url, timeout, connections)?))
    }

    pub fn files(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self::new(Transport::files(dir)?))
    }

    fn new(transport: Transport) -> Self {
        Self {
            transport,
            dkim: None,
        }
    }

    /// Signs every message with DKIM from now on.
    pub fn with_dkim(
        mut self,
        domain: &str,
        selector: &str,
        key_file: &Path,
    ) -> anyhow::Result<Self> {
        self.dkim = Some(DkimKey::read(key_file)?.into_config(domain, selector));
        Ok(self)
    }

    pub fn writes_files(&self) -> bool {
        matches!(self.transport, Transport::Files { .. })
    }

    pub fn describe(&self) -> String {
        let transport = match &self.transport {
            Transport::Smtp(_) => "SMTP (ENROLL_SMTP_URL)".to_owned(),
            Transport::Files { dir, .. } => format!(".eml files in {}", dir.display()),
        };
        if self.dkim.is_some() {
            format!("{transport}, DKIM-signed")
        } else {
            transport
        }
    }

    pub fn send(&self, mut message: Message) -> Result<(), SendError> {
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        self.transport.send(&message)
    }
}

impl Transport {
    fn smtp(url: &SecretString, timeout: Duration, connections: u32) -> anyhow::Result<Self> {
        // lettre's error for a bad URL does not echo it; keep it that way (it may hold a password).
        let transport = SmtpTransport::from_url(url.expose_secret())
            .context("ENROLL_SMTP_URL is not a valid smtp:// or smtps:// URL")?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(connections.max(1)))
            .build();
        Ok(Self::Smtp(transport))
    }

    fn files(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the mail folder {}", dir.display()))?;
        Ok(Self::Files {
            transport: FileTransport::new(dir),
            dir: dir.to_owned(),
        })
    }

    fn send(&self, message: &Message) -> Result<(), SendError> {
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
    let mut timed_out = error.is_timeout();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            // A socket read timeout surfaces as EAGAIN (WouldBlock) on Linux.
            timed_out |= matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    if timed_out {
        reason = format!("timed out waiting for the mail server ({reason})");
    }
    reason.chars().take(500).collect()
}
