//! Console sessions in the database, so that any instance serves any request and ending
//! a session ends it everywhere. Only the SHA-256 of a session's id is stored; the web
//! layer's session store keeps the id in a signed cookie and calls these.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::clock::Clock;
use crate::db::presence::Presence;
use crate::db::schema::{accounts, sessions};
use crate::db::{Db, DbError};

/// Idle expiry is pushed forward at most this often, not on every request.
const TOUCH_INTERVAL: TimeDelta = TimeDelta::seconds(60);

/// Sessions remembered at most; past it the cache starts afresh.
const CACHE_ENTRIES: usize = 10_000;

/// Sessions checked recently, so that a request need not read its session from the
/// database, kept only while nothing can have changed them unseen: every change to
/// sessions, accounts or credentials made through this instance forgets them all (after
/// its transaction committed), and so does, on PostgreSQL, every change made anywhere (a
/// trigger notifies each instance, see [`crate::db::presence`]). While the instance
/// does not hear the others (before it listens, or while its listening connection is
/// lost), nothing is remembered and every request reads its session as before.
#[derive(Default)]
pub struct SessionCache {
    /// Moves on at every change; an entry remembered under another one is stale.
    generation: AtomicU64,
    entries: RwLock<HashMap<String, Cached>>,
    presence: OnceLock<Arc<Presence>>,
}

#[derive(Clone)]
struct Cached {
    generation: u64,
    state: String,
    account_email: String,
    account_role: String,
    idle_expires_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

impl SessionCache {
    /// Remembers sessions from now on, for as long as `presence` hears every change.
    pub fn listen_with(self: &Arc<Self>, presence: &Arc<Presence>) {
        let cache = Arc::downgrade(self);
        presence.on_sessions(move || {
            if let Some(cache) = cache.upgrade() {
                cache.forget_all();
            }
        });
        let _ = self.presence.set(presence.clone());
    }

    /// Sessions, accounts or credentials changed: nothing remembered holds any more.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    /// The generation to remember something read from now on under, if it may be
    /// remembered at all. Access keys are remembered under it too (see
    /// [`crate::operations::Operations::access_key_for_signing`]): what ends sessions
    /// everywhere at once revokes keys everywhere at once.
    pub fn current(&self) -> Option<u64> {
        let listening = self.presence.get().is_some_and(|p| p.is_listening());
        listening.then(|| self.generation.load(Ordering::SeqCst))
    }

    fn get(&self, id_hash: &str, now: NaiveDateTime) -> Option<Cached> {
        let generation = self.current()?;
        let entries = self.entries.read().ok()?;
        let hit = entries.get(id_hash)?;
        (hit.generation == generation && hit.idle_expires_at > now && hit.expires_at > now)
            .then(|| hit.clone())
    }

    fn put(&self, id_hash: String, entry: Cached) {
        if self.current() != Some(entry.generation) {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(id_hash, entry);
        }
    }
}

/// A live session, with its account as it is now.
pub struct StoredSession {
    /// What the web layer keeps in the session (JSON).
    pub state: String,
    pub account_email: String,
    pub account_role: String,
}

#[derive(Clone)]
pub struct SessionRecords {
    db: Db,
    clock: Clock,
    idle: TimeDelta,
    lifetime: TimeDelta,
    cache: Arc<SessionCache>,
}

impl SessionRecords {
    pub fn new(
        db: Db,
        clock: Clock,
        idle: std::time::Duration,
        lifetime: std::time::Duration,
        cache: Arc<SessionCache>,
    ) -> Self {
        Self {
            db,
            clock,
            idle: TimeDelta::from_std(idle).unwrap_or(TimeDelta::hours(1)),
            lifetime: TimeDelta::from_std(lifetime).unwrap_or(TimeDelta::hours(12)),
            cache,
        }
    }

    /// The session with this id hash, if it is live and its account enabled; its idle
    /// expiry moves forward when it last did more than a minute ago.
    pub async fn load(&self, id_hash: String) -> Result<Option<StoredSession>, DbError> {
        let now = self.clock.now();
        let (mut found, mut remember) = match self.cache.get(&id_hash, now) {
            Some(hit) => (hit, false),
            None => {
                // Taken before reading: a change committed meanwhile makes it stale.
                let generation = self.cache.current();
                let lookup = id_hash.clone();
                let row = self
                    .db
                    .read(move |conn| {
                        let row: Option<(String, NaiveDateTime, NaiveDateTime, String, String)> =
                            sessions::table
                                .inner_join(accounts::table)
                                .filter(sessions::id_hash.eq(&lookup))
                                .filter(sessions::idle_expires_at.gt(now))
                                .filter(sessions::expires_at.gt(now))
                                .filter(accounts::disabled_at.is_null())
                                .select((
                                    sessions::state,
                                    sessions::idle_expires_at,
                                    sessions::expires_at,
                                    accounts::email,
                                    accounts::role,
                                ))
                                .first(conn)
                                .optional()?;
                        Ok::<_, DbError>(row)
                    })
                    .await?;
                let Some((state, idle_expires_at, expires_at, account_email, account_role)) = row
                else {
                    return Ok(None);
                };
                let read = Cached {
                    generation: generation.unwrap_or(u64::MAX),
                    state,
                    account_email,
                    account_role,
                    idle_expires_at,
                    expires_at,
                };
                (read, generation.is_some())
            }
        };
        if now + self.idle - found.idle_expires_at > TOUCH_INTERVAL {
            self.extend(id_hash.clone()).await?;
            found.idle_expires_at = now + self.idle;
            remember = true;
        }
        let session = StoredSession {
            state: found.state.clone(),
            account_email: found.account_email.clone(),
            account_role: found.account_role.clone(),
        };
        if remember {
            self.cache.put(id_hash, found);
        }
        Ok(Some(session))
    }

    /// Stores a new signed-in session.
    pub async fn create(
        &self,
        id_hash: String,
        account_id: String,
        state: String,
    ) -> Result<(), DbError> {
        let now = self.clock.now();
        let (idle, lifetime) = (self.idle, self.lifetime);
        self.db
            .run(move |conn| {
                diesel::insert_into(sessions::table)
                    .values((
                        sessions::id_hash.eq(id_hash),
                        sessions::account_id.eq(account_id),
                        sessions::state.eq(state),
                        sessions::created_at.eq(now),
                        sessions::idle_expires_at.eq(now + idle),
                        sessions::expires_at.eq(now + lifetime),
                    ))
                    .execute(conn)?;
                // Sign-in is rare: a good moment to forget sessions that ended long ago.
                diesel::delete(sessions::table.filter(sessions::expires_at.le(now)))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Replaces a live session's state; false when it has ended meanwhile.
    pub async fn update(&self, id_hash: String, state: String) -> Result<bool, DbError> {
        let now = self.clock.now();
        let idle = self.idle;
        let updated = self
            .db
            .run(move |conn| {
                Ok::<_, DbError>(
                    diesel::update(
                        sessions::table
                            .find(&id_hash)
                            .filter(sessions::expires_at.gt(now)),
                    )
                    .set((
                        sessions::state.eq(state),
                        sessions::idle_expires_at.eq(now + idle),
                    ))
                    .execute(conn)?,
                )
            })
            .await;
        // Forgotten even on failure: the change may have committed before the error.
        self.cache.forget_all();
        Ok(updated? == 1)
    }

    /// The session stays alive for another idle period from now.
    pub async fn extend(&self, id_hash: String) -> Result<(), DbError> {
        let until = self.clock.now() + self.idle;
        self.db
            .run(move |conn| {
                diesel::update(sessions::table.find(&id_hash))
                    .set(sessions::idle_expires_at.eq(until))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    pub async fn delete(&self, id_hash: String) -> Result<(), DbError> {
        let deleted = self
            .db
            .run(move |conn| {
                diesel::delete(sessions::table.find(&id_hash)).execute(conn)?;
                Ok(())
            })
            .await;
        self.cache.forget_all();
        deleted
    }
}
