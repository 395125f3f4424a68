//! Where email goes: an SMTP server, or .eml files for the embedded default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lettre::message::dkim::DkimConfig;
use lettre::transport::smtp::PoolConfig;
use lettre::{Message, SmtpTransport, Transport as _};
use secrecy::{ExposeSecret, SecretString};

use super::dkim::DkimKey;

pub struct Mailer {
    transport: Transport,
    dkim: Option<DkimConfig>,
}

enum Transport {
    Smtp(SmtpTransport),
    /// One `<outbox email id>.eml` per email: sending it again overwrites the file.
    Files {
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

    /// The message signed with DKIM, when configured.
    pub fn sign(&self, mut message: Message) -> Message {
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        message
    }

    /// Sends the outbox email `email_id`, as [`Mailer::sign`] left it.
    pub fn send(&self, message: Message, email_id: &str) -> Result<(), SendError> {
        self.transport.send(&message, email_id)
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
        crate::files::create_private_dir_all(dir)
            .with_context(|| format!("cannot create the mail folder {}", dir.display()))?;
        Ok(Self::Files {
            dir: dir.to_owned(),
        })
    }

    fn send(&self, message: &Message, email_id: &str) -> Result<(), SendError> {
        match self {
            Self::Smtp(transport) => transport.send(message).map(drop).map_err(|e| {
                let reason = smtp_reason(&e);
                if e.is_permanent() {
                    SendError::Permanent(reason)
                } else {
                    SendError::Transient(reason)
                }
            }),
            Self::Files { dir } => write_email_file(dir, email_id, &message.formatted()),
        }
    }
}

/// Writes `<email_id>.eml` whole or not at all: to a temporary name first, then renamed
/// over any earlier copy, so that an email sent twice (its outcome not recorded in time)
/// leaves one file, and a reader never sees half of one. lettre's FileTransport names
/// each file after a fresh uuid, which would keep both copies.
///
/// Not fsynced, like the database's own commits (`synchronous = NORMAL`): a power cut
/// may lose the last emails written, a crash of the process cannot.
fn write_email_file(dir: &Path, email_id: &str, bytes: &[u8]) -> Result<(), SendError> {
    // The id becomes a file name: accept only what the outbox makes.
    let id = uuid::Uuid::parse_str(email_id)
        .map_err(|_| SendError::Permanent("the email id is not a uuid".to_owned()))?
        .hyphenated()
        .to_string();
    let unwritten =
        |e: std::io::Error| SendError::Transient(format!("cannot write the email file: {e}"));
    // Unique per write, so that two writers of the same email never share a temporary file;
    // a leading dot and no .eml extension keep readers of the folder away from it.
    let temporary = dir.join(format!(".{id}.{}.tmp", uuid::Uuid::new_v4().simple()));
    // 0600: an email holds a live link.
    let written = crate::files::create_private_file(&temporary)
        .and_then(|mut file| std::io::Write::write_all(&mut file, bytes));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(unwritten(e));
    }
    std::fs::rename(&temporary, dir.join(format!("{id}.eml"))).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        unwritten(e)
    })
}

/// The server's own words where there are some ("550 Mailbox unavailable").
pub(crate) fn smtp_reason(error: &lettre::transport::smtp::Error) -> String {
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
        // lettre's own message often ends with its source's: say it once.
        let cause_text = cause.to_string();
        if !reason.ends_with(&cause_text) {
            reason.push_str(": ");
            reason.push_str(&cause_text);
        }
        source = cause.source();
    }
    if timed_out {
        reason = format!("timed out waiting for the mail server ({reason})");
    }
    printable(&reason)
}

/// A reason as it may be logged and shown: the mail server wrote it, and a hostile one
/// could forge log lines or terminal escapes with control characters, or disguise text
/// with invisible formatting ones. Each becomes a space, never two in a row; at most 500
/// characters are kept.
fn printable(reason: &str) -> String {
    let mut clean = String::with_capacity(reason.len().min(500));
    for c in reason.chars() {
        if !crate::values::name::is_disallowed(c) {
            clean.push(c);
        } else if !clean.ends_with(' ') {
            clean.push(' ');
        }
    }
    clean.trim().chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_their_control_and_invisible_characters() {
        assert_eq!(
            printable("550 no\r\n2026-11-30T00:00:00Z  INFO enroll: forged\x1b[2J\x07"),
            "550 no 2026-11-30T00:00:00Z  INFO enroll: forged [2J"
        );
        assert_eq!(printable("550 \u{202E}evil\u{200B}"), "550 evil");
        assert_eq!(
            printable("550 Mailbox unavailable"),
            "550 Mailbox unavailable"
        );
        assert_eq!(printable(&"x".repeat(600)).len(), 500);
    }
}
