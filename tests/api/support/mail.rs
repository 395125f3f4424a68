//! Sending the app's queued email when the test says so, instead of waiting for the
//! background worker: `deliver_due_emails` runs one pass of the outbox to completion.

use super::{ReceivedEmail, TestApp};

impl TestApp {
    /// Has the app's own mail worker send every email due now, through the app's
    /// configured transport (the test SMTP server, or the mail folder), recording each
    /// outcome; returns how many were attempted, once the server has them all. A test then
    /// reads `app.smtp` directly. Apps started with `background_mail` may call it too
    /// (to send at once rather than at the worker's next poll).
    pub async fn deliver_due_emails(&self) -> usize {
        let handle = self.handle.clone();
        let attempted = tokio::task::spawn_blocking(move || handle.deliver_due_emails())
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
