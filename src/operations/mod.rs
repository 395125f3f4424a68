//! The domain's API: every change a person (or, soon, a machine) can make is one async
//! method here, and so is every read the pages need. Each takes the acting
//! [`Principal`], checks what its role allows, runs its own transaction with its audit
//! entry and queued email, and returns a typed outcome or a domain [`Error`]. Front
//! doors (the web console today) only translate requests into these calls.

mod accounts;
mod hashing;
mod invitations;
mod reads;
mod settings;

pub use accounts::{AccountAdded, AccountChange, SignIn};
pub use invitations::TokenLookup;

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::clock::Clock;
use crate::db::Db;
use crate::mail::MailQueue;
use crate::sessions::SessionCache;
use crate::users::counts::CountsCache;
use crate::users::invitations::QueuedLink;

pub use crate::error::{Error, Result};
pub use crate::principal::{Permission, Principal};

/// The pool, the clock and the outbox's wake-up call: everything an operation needs.
/// Cheap to clone.
#[derive(Clone)]
pub struct Operations {
    db: Db,
    clock: Clock,
    mail: MailQueue,
    /// Status counts of the Users page, recounted after every change made here.
    counts: Arc<CountsCache>,
    resend_limit_per_hour: u32,
    /// Argon2, bounded and off the pool the database calls use.
    hashing: Arc<hashing::PasswordHashing>,
    /// Sessions checked recently; forgotten when an account change ends sessions.
    sessions: Arc<SessionCache>,
}

impl Operations {
    pub fn new(db: Db, clock: Clock, mail: MailQueue, resend_limit_per_hour: u32) -> Self {
        Self {
            db,
            clock,
            mail,
            counts: Arc::default(),
            resend_limit_per_hour,
            hashing: Arc::new(hashing::PasswordHashing::for_this_machine()),
            sessions: Arc::default(),
        }
    }

    /// The sessions the web layer's store remembers (see [`SessionCache`]).
    pub fn session_cache(&self) -> Arc<SessionCache> {
        self.sessions.clone()
    }

    /// Changes made through this instance so far; caches of the Users page compare it.
    pub fn generation(&self) -> u64 {
        self.counts.generation()
    }

    /// Users were changed behind the operations' back (directly in the database):
    /// count them again before the next page.
    pub fn forget_counts(&self) {
        self.counts.invalidate();
    }

    /// Users changed: the outbox may have work, and counts are stale.
    fn users_changed(&self, links: &[QueuedLink]) {
        self.counts.invalidate();
        if links.is_empty() {
            return;
        }
        self.mail.notify();
        // With file mail there is no inbox to open: the log shows each link instead.
        if self.mail.writes_files() {
            for link in links {
                tracing::info!(
                    recipient = %link.recipient,
                    link = %link.link.expose_secret(),
                    "invitation queued (email is written to files; this link enrolls the invitee)"
                );
            }
        }
    }
}
