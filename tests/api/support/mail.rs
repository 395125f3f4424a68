//! Sending the app's queued email when the test says so, instead of waiting for the
//! background worker: `deliver_due_emails` runs one pass of the outbox to completion.

use chrono::TimeDelta;
use enroll::config::Config;
use enroll::mail::{Mailer, RetryPolicy, WorkerSettings, drain};

use super::{ReceivedEmail, TestApp};

impl TestApp {
    /// Claims every email due now and sends it through the app's configured transport
    /// (the test SMTP server, or the mail folder), recording each outcome as the worker
    /// would; returns how many were attempted, once the server has them all. A test then
    /// reads `app.smtp` directly. Apps started with `background_mail` may call it too
    /// (to send at once rather than at the worker's next poll).
    pub async fn deliver_due_emails(&self) -> usize {
        let db = self.db.clone();
        let clock = self.clock.clone();
        let config = self.config.clone();
        let attempted = tokio::task::spawn_blocking(move || {
            drain::deliver_due(&db, &clock, &mailer(&config), &worker_settings(&config))
        })
        .await
        .expect("the delivery thread finishes")
        .expect("the outbox can be delivered");
        (self.forget_cached_views)();
        attempted
    }

    /// Delivers what is due, then returns every email the server has: at least `count`.
    pub async fn delivered(&self, count: usize) -> Vec<ReceivedEmail> {
        self.deliver_due_emails().await;
        let received = self.smtp.received();
        assert!(
            received.len() >= count,
            "expected {count} emails, the SMTP server has {}",
            received.len()
        );
        received
    }

    /// The status shown for this user on the Users page is `status`.
    pub async fn assert_status(&self, email: &str, status: &str) {
        assert_eq!(self.status_of(email).await, status, "the status of {email}");
    }

    /// Delivers what is due, then returns the `n`-th (1-based) email to `address`.
    pub async fn delivered_to(&self, address: &str, n: usize) -> ReceivedEmail {
        self.deliver_due_emails().await;
        self.smtp.nth_to(address, n)
    }
}

/// The transport the app builds from this configuration (`startup::mailer`).
fn mailer(config: &Config) -> Mailer {
    let timeout = std::time::Duration::from_secs(config.smtp_timeout_seconds);
    let mailer = match &config.smtp_url {
        Some(url) => Mailer::smtp(url, timeout, 1),
        None => Mailer::files(&config.mail_dir()),
    }
    .expect("the app's mail transport");
    match (
        &config.dkim_domain,
        &config.dkim_selector,
        &config.dkim_key_file,
    ) {
        (Some(domain), Some(selector), Some(key_file)) => mailer
            .with_dkim(domain, selector, key_file)
            .expect("the app's DKIM key"),
        _ => mailer,
    }
}

/// The worker settings the app derives from this configuration (`startup::worker_settings`).
fn worker_settings(config: &Config) -> WorkerSettings {
    let seconds = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
    WorkerSettings {
        threads: 1,
        poll_interval: std::time::Duration::from_millis(config.mail_poll_ms),
        lease: seconds(config.mail_lease_seconds),
        batch_size: 5,
        retry: RetryPolicy {
            first_delay: seconds(config.mail_retry_base_seconds),
            max_delay: seconds(config.mail_retry_max_seconds),
            horizon: seconds(config.mail_retry_hours.saturating_mul(3600)),
        },
    }
}
