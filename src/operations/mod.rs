//! The domain's API: every change a person (or, soon, a machine) can make is one async
//! method here, and so is every read the pages need. Each takes the acting
//! [`Principal`], checks what its role allows, runs its own transaction with its audit
//! entry and queued email, and returns a typed outcome or a domain [`Error`]. Front
//! doors (the web console today) only translate requests into these calls.

mod accounts;
mod api;
mod credentials;
mod hashing;
mod invitations;
mod provisioning;
mod reads;
mod settings;
mod single_sign_on;
mod two_factor;

pub use accounts::{AccountAdded, AccountChange, SignIn};
pub use api::{ConfigurationChange, InvitationConfiguration};
pub use credentials::{AccessKeyForSigning, CredentialAdded};
pub use invitations::TokenLookup;
pub use provisioning::{ScimCreated, ScimUpdated};
pub use single_sign_on::{Callback, SingleSignOn, SsoRefusal, SsoStart};
pub use two_factor::{PendingSignIn, PendingStage, SecondFactor, TurnOn, TwoFactorSetup};

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::clock::Clock;
use crate::credentials::CredentialKey;
use crate::db::Db;
use crate::mail::MailQueue;
use crate::sessions::SessionCache;
use crate::users::counts::CountsCache;
use crate::users::invitations::{Change, QueuedLink};

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
    /// Pages of the API's SearchUsers, shared for a moment.
    api_searches: Arc<api::SearchCache>,
    /// Argon2, bounded and off the pool the database calls use.
    hashing: Arc<hashing::PasswordHashing>,
    /// What sign-in needs beyond the password: keys, single sign-on.
    sign_in: Arc<SignInSetup>,
    /// Seals and opens access key secrets.
    credential_key: CredentialKey,
    /// Sessions checked recently; forgotten when an account change ends sessions.
    sessions: Arc<SessionCache>,
    /// Access keys read recently; forgotten with the sessions.
    access_keys: Arc<credentials::AccessKeyCache>,
    /// The Users page's searches, answered from memory.
    search_index: Arc<crate::users::search_index::SearchIndex>,
}

/// Sign-in beyond the password, set up once at start.
pub struct SignInSetup {
    /// Seals TOTP secrets, PKCE verifiers and half-done sign-ins; its key is derived
    /// from the session secret, kept outside the database.
    pub sealer: crate::crypto::Sealer,
    /// The issuer label authenticator apps show beside the account.
    pub issuer_label: String,
    pub oidc: Option<crate::oidc::Oidc>,
}

impl Default for SignInSetup {
    fn default() -> Self {
        Self {
            sealer: crate::crypto::Sealer::ephemeral(),
            issuer_label: "Enroll".to_owned(),
            oidc: None,
        }
    }
}

impl Operations {
    pub fn new(db: Db, clock: Clock, mail: MailQueue, resend_limit_per_hour: u32) -> Self {
        Self {
            db,
            clock,
            mail,
            counts: Arc::default(),
            api_searches: Arc::new(api::SearchCache::new(
                std::time::Duration::from_secs(1),
                api::SEARCHES_KEPT,
            )),
            resend_limit_per_hour,
            hashing: Arc::new(hashing::PasswordHashing::for_this_machine()),
            sign_in: Arc::default(),
            credential_key: CredentialKey::ephemeral(),
            sessions: Arc::default(),
            access_keys: Arc::default(),
            search_index: Arc::new(crate::users::search_index::SearchIndex::new(
                std::time::Duration::from_secs(1),
            )),
        }
    }

    /// With the sealing key and single sign-on of the running server.
    pub fn with_sign_in(mut self, setup: SignInSetup) -> Self {
        self.sign_in = Arc::new(setup);
        self
    }

    /// Pages of the API's SearchUsers are shared for this long (the Users page's
    /// `ENROLL_USERS_PAGE_CACHE_MS`; zero shares none), and the search index looks for
    /// changes made elsewhere at least this often (zero: before every search) unless
    /// the database tells it of them.
    pub fn with_search_pages_shared_for(mut self, fresh_for: std::time::Duration) -> Self {
        self.api_searches = Arc::new(api::SearchCache::new(fresh_for, api::SEARCHES_KEPT));
        self.search_index = Arc::new(crate::users::search_index::SearchIndex::new(fresh_for));
        self
    }

    /// The button text's name of the identity provider, when single sign-on is configured.
    pub fn single_sign_on_name(&self) -> Option<&str> {
        self.sign_in.oidc.as_ref().map(|oidc| oidc.name())
    }

    /// Access keys are sealed with this key (derived from the session secret). Without
    /// it, access keys made here could never be checked.
    pub fn with_credential_key(mut self, key: CredentialKey) -> Self {
        self.credential_key = key;
        self
    }

    /// The sessions the web layer's store remembers (see [`SessionCache`]).
    pub fn session_cache(&self) -> Arc<SessionCache> {
        self.sessions.clone()
    }

    /// Hears what other instances, the outbox and the command line change, where the
    /// database tells: sessions ended, users changed.
    pub fn listen_with(&self, presence: &Arc<crate::db::presence::Presence>) {
        self.sessions.listen_with(presence);
        self.search_index.listen_with(presence);
    }

    /// Changes made through this instance so far; caches of the Users page compare it.
    pub fn generation(&self) -> u64 {
        self.counts.generation()
    }

    /// Runs `work` on one connection (in the blocking pool) as `principal`'s change at
    /// this moment: the shape of every operation on users.
    async fn as_change<T, F>(&self, principal: &Principal, work: F) -> Result<T>
    where
        F: FnOnce(&mut crate::db::DbConnection, &Change<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let now = self.clock.now();
        let actor = principal.actor();
        self.db
            .run(move |conn| work(conn, &Change { now, actor: &actor }))
            .await
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
