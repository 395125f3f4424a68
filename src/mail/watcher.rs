//! What wakes the outbox's sender threads, so that an idle instance leaves the database
//! alone: email queued here (an in-process call), email queued by another instance (a
//! PostgreSQL notification, see [`crate::db::presence`]), and one watcher thread per
//! instance that sleeps until the next retry or reminder is due, and now and then frees
//! the email that dead instances had claimed.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::dsl::min;
use diesel::prelude::*;

use crate::clock::Clock;
use crate::db::presence::Presence;
use crate::db::schema::outbound_emails;
use crate::db::{Db, DbConnection, write_transaction};

use super::outbox::status;

/// Wakes idle sender threads when email is queued, the watcher when the schedule
/// changed, and tells them all to stop.
#[derive(Default)]
pub(super) struct Signal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Default)]
struct SignalState {
    pending: bool,
    schedule_changed: bool,
    stopping: bool,
}

impl Signal {
    /// Email may be due now: one idle sender wakes (and wakes another if it finds some).
    pub(super) fn notify(&self) {
        self.update(|s| s.pending = true);
    }

    /// Email was queued or rescheduled: the watcher looks again at what is due when.
    pub(super) fn schedule_changed(&self) {
        self.update(|s| s.schedule_changed = true);
    }

    pub(super) fn stop(&self) {
        self.update(|s| s.stopping = true);
    }

    fn update(&self, change: impl FnOnce(&mut SignalState)) {
        if let Ok(mut state) = self.state.lock() {
            change(&mut state);
            self.changed.notify_all();
        }
    }

    /// Sleeps for `timeout` unless told to stop; true when stopping. Unlike `wait`, it
    /// leaves notifications of new email to the idle threads.
    pub(super) fn sleep(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |_| false)
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.state.lock().map(|s| s.stopping).unwrap_or(true)
    }

    /// Waits for email to send or the timeout; true when stopping.
    pub(super) fn wait(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| std::mem::take(&mut s.pending))
    }

    /// Waits for a change of schedule or the timeout; true when stopping.
    fn wait_for_schedule(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| std::mem::take(&mut s.schedule_changed))
    }

    /// Waits until `woken` takes its flag, stopping is asked, or `timeout` passes.
    fn wait_for(&self, timeout: Duration, woken: fn(&mut SignalState) -> bool) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if state.stopping {
                return true;
            }
            if woken(&mut state) {
                return false;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(_) => return true,
            };
        }
    }
}

/// One per instance: the only thread that looks at the outbox while nothing happens.
pub(super) struct Watcher {
    pub db: Db,
    pub clock: Clock,
    pub presence: Arc<Presence>,
    pub signal: Arc<Signal>,
    /// Longest sleep: how soon email claimed by a dead instance, or queued without a
    /// word (by an older version, or by hand), is found.
    pub poll: Duration,
}

impl Watcher {
    pub fn run(self) {
        loop {
            let sleep = match self.look() {
                Ok(sleep) => sleep,
                Err(error) => {
                    tracing::error!(%error, "mail watcher: database error, retrying");
                    self.poll
                }
            };
            if self.signal.wait_for_schedule(sleep) {
                return;
            }
        }
    }

    /// Frees what dead instances claimed, wakes the senders when email is due, and
    /// returns how long to sleep.
    fn look(&self) -> anyhow::Result<Duration> {
        let mut conn = self.db.get()?;
        let freed = self.free_claims_of_the_dead(&mut conn)?;
        let next = next_due(&mut conn)?;
        drop(conn);
        let now = self.clock.now();
        match next {
            Some(at) if at <= now || freed > 0 => {
                self.signal.notify();
                Ok(self.poll)
            }
            Some(at) => Ok((at - now)
                .to_std()
                .unwrap_or_default()
                .min(self.poll)
                // A little late rather than early, when the clock ticks coarsely.
                .saturating_add(Duration::from_millis(5))),
            None => Ok(self.poll),
        }
    }

    /// Makes the email claimed by instances that no longer run due now; returns how
    /// many. Safe against an instance wrongly taken for dead (its lock's connection lost
    /// while it runs): on PostgreSQL a send holds its row's lock and checks its claim, so
    /// an email goes out through one instance only; SQLite's lock file cannot be lost so.
    fn free_claims_of_the_dead(&self, conn: &mut DbConnection) -> anyhow::Result<usize> {
        let me = self.presence.instance_id();
        let claimers: Vec<Option<String>> = outbound_emails::table
            .filter(outbound_emails::status.eq(status::SENDING))
            .filter(outbound_emails::claimed_by.is_not_null())
            .filter(outbound_emails::claimed_by.ne(me))
            .select(outbound_emails::claimed_by)
            .distinct()
            .load(conn)?;
        let mut freed = 0;
        for claimer in claimers.into_iter().flatten() {
            if self.presence.is_alive(conn, &claimer)? {
                continue;
            }
            let now = self.clock.now();
            let count = write_transaction(conn, |conn| {
                diesel::update(
                    outbound_emails::table
                        .filter(outbound_emails::status.eq(status::SENDING))
                        .filter(outbound_emails::claimed_by.eq(&claimer)),
                )
                .set((
                    outbound_emails::next_attempt_at.eq(now),
                    outbound_emails::claimed_by.eq(None::<String>),
                ))
                .execute(conn)
            })?;
            tracing::warn!(
                instance = %claimer, emails = count,
                "an instance stopped while holding email: sending it from here"
            );
            freed += count;
        }
        Ok(freed)
    }
}

/// When the next queued or claimed email is due (a claim is due when its lease ends).
fn next_due(conn: &mut DbConnection) -> QueryResult<Option<NaiveDateTime>> {
    outbound_emails::table
        .filter(outbound_emails::status.eq_any([status::QUEUED, status::SENDING]))
        .select(min(outbound_emails::next_attempt_at))
        .first(conn)
}
