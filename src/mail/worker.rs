//! The outbox worker: a few threads per instance that claim due emails, send them and
//! record what happened, retrying temporary failures with backoff.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox, MessageBuilder, MultiPart};

use super::outbox::{self, Claim, ClaimedEmail, Outcome, Unrecorded};
use super::seal::MailKey;
use super::transport::{Mailer, SendError};
use super::watcher::{Signal, Watcher};
use crate::clock::Clock;
use crate::db::presence::Presence;
use crate::db::{Db, DbConnection, PooledConnection};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub threads: usize,
    pub poll_interval: Duration,
    pub lease: TimeDelta,
    pub batch_size: i64,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub first_delay: TimeDelta,
    pub max_delay: TimeDelta,
    /// Give up on an email this long after it was queued.
    pub horizon: TimeDelta,
}

impl RetryPolicy {
    /// After a temporary failure on attempt number `attempts`: exponential backoff with
    /// ±20% jitter (so that a recovering server is not hit by every email at once),
    /// or failure once the horizon is passed.
    pub fn after_transient(
        &self,
        attempts: i32,
        queued_at: NaiveDateTime,
        now: NaiveDateTime,
        reason: String,
    ) -> Outcome {
        let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let delay = self
            .first_delay
            .checked_mul(2_i32.saturating_pow(exponent))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter_permille = i64::from(fastrand_permille()) - 500; // -500..=499
        let jitter = TimeDelta::milliseconds(delay.num_milliseconds() * jitter_permille / 2500);
        let at = now + delay + jitter;
        if at - queued_at > self.horizon {
            Outcome::Failed(format!("gave up after {attempts} attempts: {reason}"))
        } else {
            Outcome::RetryAt(at, reason)
        }
    }
}

fn fastrand_permille() -> u16 {
    let [a, b] = crate::crypto::random_bytes::<2>();
    u16::from_le_bytes([a, b]) % 1000
}

/// Between tries at recording an outcome: soon, since every thread that meets the
/// lock has already waited the busy timeout, then less and less often.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(250);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

/// What request handlers hold: a way to say "email was just queued".
#[derive(Clone)]
pub struct MailQueue {
    signal: Arc<Signal>,
    writes_files: bool,
    /// Seals the bodies of the emails queued here; the worker opens them.
    key: MailKey,
}

impl MailQueue {
    /// Email was queued: a sender wakes, and the watcher learns of any email due later.
    pub fn notify(&self) {
        self.signal.notify();
        self.signal.schedule_changed();
    }

    /// With file mail, links are logged so a newcomer can follow them without a mail server.
    pub fn writes_files(&self) -> bool {
        self.writes_files
    }

    pub fn key(&self) -> &MailKey {
        &self.key
    }

    /// For work that queues no email (the command line): nobody listens, and a key
    /// nobody holds would make anything queued by mistake fail instead of leak.
    pub fn unattended() -> Self {
        Self {
            signal: Arc::default(),
            writes_files: false,
            key: MailKey::ephemeral(),
        }
    }
}

pub struct MailWorker {
    signal: Arc<Signal>,
    threads: Vec<JoinHandle<()>>,
    /// What each thread runs, for a pass on demand ([`MailWorker::deliver_due`]).
    sender: Worker,
}

/// A worker whose queue handle exists but whose threads wait for the database to be
/// migrated.
pub struct PreparedWorker {
    signal: Arc<Signal>,
    mailer: Mailer,
    key: MailKey,
}

impl PreparedWorker {
    /// Starts the sender threads and, with them, the watcher (none without threads: the
    /// tests that send with [`MailWorker::deliver_due`]). `presence` is this instance's
    /// lock: the email it claims is marked with its id.
    pub fn start(
        self,
        db: Db,
        clock: Clock,
        settings: WorkerSettings,
        presence: Arc<Presence>,
    ) -> MailWorker {
        // Another instance queued email.
        let woken = self.signal.clone();
        presence.on_outbox(move || {
            woken.notify();
            woken.schedule_changed();
        });
        let sender = Worker {
            db,
            mailer: Arc::new(self.mailer),
            key: self.key,
            clock,
            settings,
            signal: self.signal.clone(),
            instance: presence.instance_id().into(),
        };
        let mut threads: Vec<JoinHandle<()>> = (0..sender.settings.threads)
            .map(|n| {
                let worker = sender.clone();
                std::thread::Builder::new()
                    .name(format!("mail-{n}"))
                    .spawn(move || worker.run())
                    .expect("cannot start a mail worker thread")
            })
            .collect();
        if sender.settings.threads > 0 {
            let watcher = Watcher {
                db: sender.db.clone(),
                clock: sender.clock.clone(),
                presence,
                signal: self.signal.clone(),
                poll: sender.settings.poll_interval,
            };
            threads.push(
                std::thread::Builder::new()
                    .name("mail-watch".to_owned())
                    .spawn(move || watcher.run())
                    .expect("cannot start the mail watcher thread"),
            );
        }
        MailWorker {
            signal: self.signal,
            threads,
            sender,
        }
    }
}

impl MailWorker {
    /// `key` seals what is queued and opens what is sent: every instance sharing a
    /// database must derive the same one.
    pub fn prepare(mailer: Mailer, key: MailKey) -> (PreparedWorker, MailQueue) {
        let signal = Arc::new(Signal::default());
        let queue = MailQueue {
            signal: signal.clone(),
            writes_files: mailer.writes_files(),
            key: key.clone(),
        };
        (
            PreparedWorker {
                signal,
                mailer,
                key,
            },
            queue,
        )
    }

    /// Sends every email due now, in the caller's thread, exactly as the threads would,
    /// and returns once none is due (an email whose attempt failed for now is rescheduled
    /// and not tried twice here); returns how many were attempted. For a worker started
    /// without threads (the integration tests), this is how mail goes out.
    pub fn deliver_due(&self) -> anyhow::Result<usize> {
        let mut attempted = std::collections::HashSet::new();
        let mut held = None;
        loop {
            let claim_token = uuid::Uuid::new_v4().to_string();
            let ids = self.sender.claim(&mut held, &claim_token)?;
            let fresh: Vec<String> = ids
                .into_iter()
                .filter(|id| attempted.insert(id.clone()))
                .collect();
            if fresh.is_empty() {
                // Nothing due, or only what was tried already (its lease brings it back).
                return Ok(attempted.len());
            }
            for id in &fresh {
                self.sender.deliver(&mut held, id, &claim_token)?;
            }
        }
    }

    /// Asks the threads to stop after the email in hand, without waiting for them.
    pub fn stop(&self) {
        self.signal.stop();
    }

    /// Stops and waits for the threads.
    pub fn shutdown(mut self) {
        self.signal.stop();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for MailWorker {
    fn drop(&mut self) {
        self.signal.stop();
    }
}

#[derive(Clone)]
struct Worker {
    db: Db,
    mailer: Arc<Mailer>,
    key: MailKey,
    clock: Clock,
    settings: WorkerSettings,
    signal: Arc<Signal>,
    /// This instance's id, written on every claim.
    instance: Arc<str>,
}

/// How long an idle sender waits before looking by itself: the watcher wakes it when
/// email is due, so this only bounds the cost of a lost wake-up.
const SENDER_IDLE_WAIT: Duration = Duration::from_secs(600);

impl Worker {
    fn run(self) {
        let mut idle_wait = SENDER_IDLE_WAIT;
        loop {
            if self.signal.is_stopping() {
                return;
            }
            match self.work_once() {
                Ok(0) => idle_wait = SENDER_IDLE_WAIT,
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(error = %error, "mail worker: database error, retrying");
                    idle_wait = if idle_wait == SENDER_IDLE_WAIT {
                        self.settings.poll_interval
                    } else {
                        (idle_wait * 2).min(Duration::from_secs(30))
                    };
                }
            }
            if self.signal.wait(idle_wait) {
                return;
            }
        }
    }

    /// Claims and sends one batch; returns how many emails were claimed.
    fn work_once(&self) -> anyhow::Result<usize> {
        let claim_token = uuid::Uuid::new_v4().to_string();
        // One connection for the batch (see `outbox::deliver_claimed`).
        let mut held = None;
        let ids = self.claim(&mut held, &claim_token)?;
        if !ids.is_empty() {
            // There may be more: another idle sender joins in (and so on, while it finds some).
            self.signal.notify();
        }
        for id in &ids {
            if self.signal.is_stopping() {
                // The rest become due again when the lease runs out.
                break;
            }
            self.deliver(&mut held, id, &claim_token)?;
        }
        Ok(ids.len())
    }

    /// The connection held for the batch, taken from the pool if there is none.
    fn held<'c>(
        &self,
        held: &'c mut Option<PooledConnection>,
    ) -> anyhow::Result<&'c mut DbConnection> {
        let conn = match held {
            Some(conn) => conn,
            None => held.insert(self.db.get()?),
        };
        Ok(conn)
    }

    /// Claims a batch of due emails under `claim_token`.
    fn claim(
        &self,
        held: &mut Option<PooledConnection>,
        claim_token: &str,
    ) -> anyhow::Result<Vec<String>> {
        Ok(outbox::claim_due(
            self.held(held)?,
            self.clock.now(),
            Claim {
                token: claim_token,
                instance: &self.instance,
            },
            self.settings.lease,
            self.settings.batch_size,
        )?)
    }

    /// Sends one claimed email and records what happened, however long that takes.
    fn deliver(
        &self,
        held: &mut Option<PooledConnection>,
        id: &str,
        claim_token: &str,
    ) -> anyhow::Result<()> {
        let unrecorded = outbox::deliver_claimed(
            self.held(held)?,
            id,
            claim_token,
            self.settings.lease,
            &self.clock,
            |email| self.prepare(email),
            |email, message| self.send(email, message),
        )?;
        if let Some(unrecorded) = unrecorded {
            // It may be what refused the record: back to the pool (which drops it if it
            // is broken) while the retries take others.
            *held = None;
            self.record_until_done(unrecorded, claim_token);
        }
        Ok(())
    }

    /// Keeps trying to record an outcome the database refused, for as long as the
    /// process runs: giving up would let the lease run out and the email go out again.
    /// The other threads carry on meanwhile.
    fn record_until_done(&self, unrecorded: Unrecorded, claim_token: &str) {
        let (id, outcome) = (&unrecorded.email.id, unrecorded.outcome.name());
        let mut error = unrecorded.error.to_string();
        // Each failed try renews the lease, so tries must come well within it.
        let longest = self
            .settings
            .lease
            .to_std()
            .map_or(RECORD_RETRY_MAX, |lease| (lease / 4).min(RECORD_RETRY_MAX));
        let mut wait = RECORD_RETRY_FIRST.min(longest);
        loop {
            let failures = self.db.metrics().count_mail_outcome_record_failure();
            tracing::warn!(
                email_id = %id, outcome, %error, mail_outcome_record_failures_total = failures,
                "mail worker: cannot record an outcome yet, retrying"
            );
            let stopping = self.signal.sleep(wait);
            // One last try when stopping: the wait may be what the database needed.
            match outbox::record_again(
                &self.db,
                &unrecorded,
                claim_token,
                self.settings.lease,
                &self.clock,
            ) {
                Ok(()) => {
                    tracing::info!(email_id = %id, outcome, "mail worker: outcome recorded after retrying");
                    return;
                }
                Err(again) if stopping => {
                    self.db.metrics().count_mail_outcome_record_failure();
                    tracing::error!(
                        email_id = %id, outcome, error = %again,
                        "mail worker stopped before it could record this outcome: once the claim's \
                         lease runs out this email (outbound_emails.id) is due again and goes out \
                         a second time"
                    );
                    return;
                }
                Err(again) => error = again.to_string(),
            }
            wait = (wait * 2).min(longest);
        }
    }

    /// The message ready to hand over (signed), or why there is none.
    fn prepare(&self, email: &ClaimedEmail) -> Result<Message, Outcome> {
        build_message(email, &self.key)
            .map(|message| self.mailer.sign(message))
            .map_err(|e| self.outcome(email, Err(e)))
    }

    fn send(&self, email: &ClaimedEmail, message: Message) -> Outcome {
        self.outcome(email, self.mailer.send(message, &email.id))
    }

    fn outcome(&self, email: &ClaimedEmail, result: Result<(), SendError>) -> Outcome {
        let now = self.clock.now();
        let outcome = match result {
            Ok(()) => {
                tracing::info!(email_id = %email.id, kind = %email.kind, "email sent");
                Outcome::Sent
            }
            Err(SendError::Permanent(reason)) => {
                tracing::warn!(email_id = %email.id, %reason, "email refused for good");
                Outcome::Failed(reason)
            }
            Err(SendError::Transient(reason)) => {
                let outcome = self.settings.retry.after_transient(
                    email.attempts,
                    email.created_at,
                    now,
                    reason.clone(),
                );
                tracing::warn!(email_id = %email.id, attempts = email.attempts, %reason, ?outcome, "email not sent");
                // The watcher wakes the senders when the retry is due.
                self.signal.schedule_changed();
                outcome
            }
        };
        // Counted as attempted, whether or not the outcome is recorded at once: the
        // server's answer is what happened.
        let metrics = self.db.metrics();
        match &outcome {
            Outcome::Sent => metrics.count_email_sent(),
            Outcome::RetryAt(..) => metrics.count_email_deferred(),
            Outcome::Failed(_) => metrics.count_email_failed(),
        }
        outcome
    }
}

/// The message, its bodies opened only now: the database holds them sealed.
fn build_message(email: &ClaimedEmail, key: &MailKey) -> Result<Message, SendError> {
    let permanent =
        |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {e}"));
    let (Some(text), Some(html)) = (&email.body_text, &email.body_html) else {
        return Err(SendError::Permanent("the email has no body".to_owned()));
    };
    let open = |sealed: &str| {
        key.open(&email.id, sealed)
            .map_err(|e| SendError::Permanent(e.to_string()))
    };
    let (text, html) = (open(text)?, open(html)?);
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
    let body = MultiPart::alternative_plain_html(text, html);
    with_mime_body(builder, &body).map_err(|e| permanent("cannot build the message", &e))
}

/// The message with `body` as its body, its Content-Type a header of the message itself.
/// lettre writes a MIME body's own headers after the message's, outside
/// `Message::headers()`, where its DKIM signer does not look: a signature listing
/// Content-Type would then hash it as absent while receivers find it, and fail.
fn with_mime_body(builder: MessageBuilder, body: &MultiPart) -> Result<Message, String> {
    let content_type = body
        .headers()
        .get::<ContentType>()
        .ok_or("the multipart body has no Content-Type")?;
    let formatted = body.formatted();
    // `formatted` is the part's headers, a blank line, then its body.
    let head = format!("{}\r\n", body.headers());
    let raw = formatted
        .strip_prefix(head.as_bytes())
        .ok_or("the multipart body is not laid out as expected")?
        .to_vec();
    // The parts are already encoded; multipart itself may only be 7bit or 8bit (RFC 2045).
    let encoding = if raw.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    builder
        .header(MIME_VERSION_1_0)
        .header(content_type)
        .body(Body::dangerous_pre_encoded(raw, encoding))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            first_delay: TimeDelta::seconds(30),
            max_delay: TimeDelta::hours(1),
            horizon: TimeDelta::hours(48),
        }
    }

    fn at(hours: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let now = at(0);
        for (attempts, expected) in [(1, 30), (2, 60), (3, 120), (20, 3600)] {
            let Outcome::RetryAt(when, _) =
                policy().after_transient(attempts, now, now, "x".into())
            else {
                panic!("gave up too early");
            };
            let delay = (when - now).num_milliseconds() as f64 / 1000.0;
            let expected = f64::from(expected);
            assert!(
                delay >= expected * 0.79 && delay <= expected * 1.21,
                "attempt {attempts}: {delay}s, expected about {expected}s"
            );
        }
    }

    #[test]
    fn gives_up_after_the_horizon() {
        let outcome = policy().after_transient(30, at(0), at(48), "421 busy".into());
        assert!(matches!(outcome, Outcome::Failed(reason) if reason.contains("421 busy")));
    }

    #[test]
    fn the_content_type_is_a_header_of_the_message_itself() {
        let body = MultiPart::alternative_plain_html(
            "Hello Zoë,\n".repeat(40),
            "<p>Hello Zoë</p>".to_owned(),
        );
        let builder = Message::builder()
            .from("a@example.com".parse().unwrap())
            .to("b@example.com".parse().unwrap())
            .subject("Hi");
        let message = with_mime_body(builder, &body).unwrap();
        assert!(message.headers().get::<ContentType>().is_some());
        assert!(message.headers().get::<header::MimeVersion>().is_some());
        // Once, with the body just as lettre would lay it out under its own headers.
        let sent = String::from_utf8(message.formatted()).unwrap();
        assert_eq!(
            sent.matches("Content-Type: multipart/alternative").count(),
            1
        );
        let multipart = String::from_utf8(body.formatted()).unwrap();
        let (_, parts) = multipart.split_once("\r\n\r\n").unwrap();
        assert!(sent.ends_with(&format!("\r\n\r\n{parts}")), "{sent}");
        assert!(sent.contains("Content-Transfer-Encoding: 7bit\r\n"));
    }
}
