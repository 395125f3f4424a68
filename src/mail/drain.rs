//! Delivering every due email now, in the caller's thread, and returning when done: one
//! pass of what the worker does in the background. The integration tests start the app
//! with its worker idle (`mail_workers = 0`) and call this instead of waiting for mail,
//! so that a test reads the SMTP server's inbox the moment this returns.
//!
//! It claims, sends and settles through the same outbox functions as the worker
//! (`outbox::claim_due`, `outbox::deliver_claimed`), so claims, leases, cancellation and
//! the record of each attempt are the worker's own.
//!
//! TODO(issue 9): `build_message` and `attempt` repeat the worker's private ones (kept
//! apart while `worker.rs` is being edited elsewhere); once that settles, the worker
//! should call these and drop its copies. `tests/api/delivery.rs` checks that an email
//! sent by either carries the same headers.

use std::collections::HashSet;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::outbox::{self, ClaimedEmail, Outcome};
use super::transport::{Mailer, SendError};
use super::worker::WorkerSettings;
use crate::clock::Clock;
use crate::db::Db;

/// Claims and sends every email due at `clock.now()`, batch by batch, until none is
/// due; returns how many were attempted. An email whose attempt fails for now is
/// rescheduled by `settings.retry` (so it is not due again in this call) and is not
/// attempted twice here.
pub fn deliver_due(
    db: &Db,
    clock: &Clock,
    mailer: &Mailer,
    settings: &WorkerSettings,
) -> anyhow::Result<usize> {
    let mut attempted = HashSet::new();
    loop {
        let claim_token = uuid::Uuid::new_v4().to_string();
        let ids = outbox::claim_due(
            &mut *db.get()?,
            clock.now(),
            &claim_token,
            settings.lease,
            settings.batch_size.max(1),
        )?;
        if ids.is_empty() {
            return Ok(attempted.len());
        }
        let mut new = 0;
        for id in &ids {
            if !attempted.insert(id.clone()) {
                // Due again within this call (a zero retry delay): the lease brings it back.
                continue;
            }
            new += 1;
            outbox::deliver_claimed(db, id, &claim_token, settings.lease, clock, |email| {
                attempt(mailer, settings, clock, email)
            })?;
        }
        if new == 0 {
            return Ok(attempted.len());
        }
    }
}

fn attempt(
    mailer: &Mailer,
    settings: &WorkerSettings,
    clock: &Clock,
    email: &ClaimedEmail,
) -> Outcome {
    match build_message(email).and_then(|message| mailer.send(message)) {
        Ok(()) => Outcome::Sent,
        Err(SendError::Permanent(reason)) => Outcome::Failed(reason),
        Err(SendError::Transient(reason)) => {
            settings
                .retry
                .after_transient(email.attempts, email.created_at, clock.now(), reason)
        }
    }
}

fn build_message(email: &ClaimedEmail) -> Result<Message, SendError> {
    let permanent =
        |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {e}"));
    let (Some(text), Some(html)) = (&email.body_text, &email.body_html) else {
        return Err(SendError::Permanent("the email has no body".to_owned()));
    };
    let from = Mailbox::new(
        Some(email.sender_name.clone()),
        email
            .sender_address
            .parse()
            .map_err(|e| permanent("bad sender address", &e))?,
    );
    let to: Mailbox = email
        .recipient
        .parse()
        .map_err(|e| permanent("bad recipient address", &e))?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()))
        .date_now();
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(
            reply_to
                .parse()
                .map_err(|e| permanent("bad reply-to address", &e))?,
        );
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        ))
        .map_err(|e| permanent("cannot build the message", &e))
}
