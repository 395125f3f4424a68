//! Counters of trouble worth watching, kept per running application (tests run many
//! in one process) and shared by every pool of its database. A future `GET /metrics`
//! reads them through `Db::metrics`; until then they are logged as they grow.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    sqlite_busy: AtomicU64,
    mail_outcome_record_failures: AtomicU64,
}

impl Metrics {
    /// `enroll_sqlite_busy_total`: statements that met SQLite's lock and gave up after
    /// the busy timeout ("database is locked"). Each one was retried or reported; a
    /// steady rise means writers hold the lock too long.
    pub fn sqlite_busy_total(&self) -> u64 {
        self.sqlite_busy.load(Ordering::Relaxed)
    }

    /// `enroll_mail_outcome_record_failures_total`: attempts to record that an email
    /// was sent (or failed for good) that the database refused; each is retried.
    pub fn mail_outcome_record_failures_total(&self) -> u64 {
        self.mail_outcome_record_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn count_sqlite_busy(&self) -> u64 {
        self.sqlite_busy.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn count_mail_outcome_record_failure(&self) -> u64 {
        self.mail_outcome_record_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1
    }
}

/// Whether SQLite gave up waiting for a lock (SQLITE_BUSY, or SQLITE_LOCKED between
/// connections sharing a cache). diesel reports both as an unknown database error, so
/// only SQLite's own message tells them apart.
pub fn is_sqlite_busy(error: &diesel::result::Error) -> bool {
    match error {
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("database is locked")
                || message.contains("database table is locked")
                || message.contains("database schema is locked")
        }
        _ => false,
    }
}
