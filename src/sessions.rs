//! Console sessions in the database, so that any instance serves any request and ending
//! a session ends it everywhere. Only the SHA-256 of a session's id is stored; the web
//! layer's session store keeps the id in a signed cookie and calls these.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::clock::Clock;
use crate::db::schema::{accounts, sessions};
use crate::db::{Db, DbError};

/// Idle expiry is pushed forward at most this often, not on every request.
const TOUCH_INTERVAL: TimeDelta = TimeDelta::seconds(60);

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
}

impl SessionRecords {
    pub fn new(
        db: Db,
        clock: Clock,
        idle: std::time::Duration,
        lifetime: std::time::Duration,
    ) -> Self {
        Self {
            db,
            clock,
            idle: TimeDelta::from_std(idle).unwrap_or(TimeDelta::hours(1)),
            lifetime: TimeDelta::from_std(lifetime).unwrap_or(TimeDelta::hours(12)),
        }
    }

    /// The session with this id hash, if it is live and its account enabled; its idle
    /// expiry moves forward when it last did more than a minute ago.
    pub async fn load(&self, id_hash: String) -> Result<Option<StoredSession>, DbError> {
        let now = self.clock.now();
        let lookup = id_hash.clone();
        let row = self
            .db
            .read(move |conn| {
                let row: Option<(String, NaiveDateTime, String, String)> = sessions::table
                    .inner_join(accounts::table)
                    .filter(sessions::id_hash.eq(&lookup))
                    .filter(sessions::idle_expires_at.gt(now))
                    .filter(sessions::expires_at.gt(now))
                    .filter(accounts::disabled_at.is_null())
                    .select((
                        sessions::state,
                        sessions::idle_expires_at,
                        accounts::email,
                        accounts::role,
                    ))
                    .first(conn)
                    .optional()?;
                Ok::<_, DbError>(row)
            })
            .await?;
        let Some((state, idle_expires_at, account_email, account_role)) = row else {
            return Ok(None);
        };
        if now + self.idle - idle_expires_at > TOUCH_INTERVAL {
            self.extend(id_hash).await?;
        }
        Ok(Some(StoredSession {
            state,
            account_email,
            account_role,
        }))
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
            .await?;
        Ok(updated == 1)
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
        self.db
            .run(move |conn| {
                diesel::delete(sessions::table.find(&id_hash)).execute(conn)?;
                Ok(())
            })
            .await
    }
}
