//! Status counts for the unfiltered Users page, which would otherwise cost a scan of
//! every user on every request. Counted again after a change made here, and in the
//! background when a few seconds old (statuses also change with time and through other
//! instances; more seldom when counting is slow, see [`FRESH_PER_COUNTING_TIME`]); a
//! searched view is counted on the spot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDateTime, TimeDelta};

use super::EnrollmentStatus;
use super::list;
use crate::clock::Clock;
use crate::db::Db;
use crate::error::Error;

/// Served as they are for this long at least.
const FRESH_FOR: TimeDelta = TimeDelta::seconds(5);
/// ... and at least this many times as long as they took to count, so that counting
/// everyone in the background never takes more than about 1% of a core (71 ms at
/// 100,000 users on SQLite; ten times that at a million).
const FRESH_PER_COUNTING_TIME: i32 = 100;
/// Served while being counted again in the background for up to this long; older
/// counts are counted again before answering.
const USABLE_FOR: TimeDelta = TimeDelta::seconds(60);

/// A search matching more users than this is counted no further: its page says "more
/// than 1,000" and shows no counts by status. Counting every match of a broad search
/// ("ove": 2,000 at 100,000 users) cost more than finding its first page.
pub const COUNT_CAP: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCounts {
    pub by_status: Vec<(EnrollmentStatus, i64)>,
    pub expiring_soon: i64,
    /// More than [`COUNT_CAP`] users match: they were not counted by status (the counts
    /// above are zero), and only "more than 1,000" may be shown.
    pub capped: bool,
}

impl StatusCounts {
    pub fn total(&self) -> i64 {
        self.by_status.iter().map(|(_, n)| n).sum()
    }

    pub fn of(&self, status: EnrollmentStatus) -> i64 {
        self.by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }

    /// Counts every user, by status (callers cache it).
    pub fn count_everyone(
        conn: &mut crate::db::DbConnection,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<Self> {
        let (by_status, expiring_soon) = list::status_counts(conn, "", now)?;
        Ok(Self {
            by_status,
            expiring_soon,
            capped: false,
        })
    }

    /// The counts within `query`'s search, as cheaply as they can be known: from `page`
    /// itself when it shows every match; not by status at all when more than
    /// [`COUNT_CAP`] users match (learnt from the trigram index alone, without looking
    /// at a single user); otherwise counted by the database.
    pub fn within_search(
        conn: &mut crate::db::DbConnection,
        query: &list::ListQuery,
        page: &list::Page,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<Self> {
        if page.holds_every_match(query) {
            return Ok(Self::of_rows(&page.rows, now));
        }
        if list::search_matches(conn, &query.search, COUNT_CAP + 1)? > COUNT_CAP {
            return Ok(Self::capped());
        }
        let (by_status, expiring_soon) = list::status_counts(conn, &query.search, now)?;
        Ok(Self {
            by_status,
            expiring_soon,
            capped: false,
        })
    }

    fn of_rows(rows: &[list::UserRow], now: NaiveDateTime) -> Self {
        Self::tally(
            rows.iter()
                .map(|row| (row.status(now), row.expires_soon(now))),
        )
    }

    /// The counts of users with these statuses (and whether each expires soon).
    pub fn tally(users: impl Iterator<Item = (EnrollmentStatus, bool)>) -> Self {
        let mut by_status = EnrollmentStatus::ALL.map(|status| (status, 0)).to_vec();
        let mut expiring_soon = 0;
        for (status, expires_soon) in users {
            if let Some((_, n)) = by_status.iter_mut().find(|(s, _)| *s == status) {
                *n += 1;
            }
            expiring_soon += i64::from(expires_soon);
        }
        Self {
            by_status,
            expiring_soon,
            capped: false,
        }
    }

    /// More than [`COUNT_CAP`] users match, and none was counted by status.
    pub fn capped() -> Self {
        Self {
            by_status: EnrollmentStatus::ALL.map(|status| (status, 0)).to_vec(),
            expiring_soon: 0,
            capped: true,
        }
    }
}

struct Snapshot {
    generation: u64,
    counted_at: NaiveDateTime,
    /// How long counting took.
    cost: TimeDelta,
    counts: StatusCounts,
}

impl Snapshot {
    fn fresh_for(&self) -> TimeDelta {
        FRESH_FOR.max(self.cost * FRESH_PER_COUNTING_TIME)
    }
}

#[derive(Default)]
pub struct CountsCache {
    snapshot: Mutex<Option<Snapshot>>,
    /// Bumped by every change made through this instance.
    generation: AtomicU64,
    refreshing: AtomicBool,
    /// One count at a time: requests arriving meanwhile wait for it, not count again.
    counting: tokio::sync::Mutex<()>,
}

impl CountsCache {
    /// Users were invited, resent, removed, or joined: count again before the next page.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes made through this instance so far; caches of the Users page compare it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The counts, and whether they are fresh, if usable at all.
    fn cached(&self, clock: &Clock) -> Option<(StatusCounts, bool)> {
        let generation = self.generation.load(Ordering::SeqCst);
        let now = clock.now();
        self.snapshot.lock().ok().and_then(|snapshot| {
            snapshot
                .as_ref()
                .filter(|s| {
                    s.generation == generation
                        && now - s.counted_at < USABLE_FOR.max(s.fresh_for() * 2)
                })
                .map(|s| (s.counts.clone(), now - s.counted_at < s.fresh_for()))
        })
    }

    pub async fn get(self: &Arc<Self>, db: &Db, clock: &Clock) -> Result<StatusCounts, Error> {
        match self.cached(clock) {
            Some((counts, true)) => Ok(counts),
            Some((counts, false)) => {
                if !self.refreshing.swap(true, Ordering::SeqCst) {
                    let (cache, db, clock) = (self.clone(), db.clone(), clock.clone());
                    tokio::spawn(async move {
                        if let Err(error) = cache.recount(&db, &clock).await {
                            tracing::warn!(%error, "could not count users by status");
                        }
                        cache.refreshing.store(false, Ordering::SeqCst);
                    });
                }
                Ok(counts)
            }
            None => self.recount(db, clock).await,
        }
    }

    async fn recount(&self, db: &Db, clock: &Clock) -> Result<StatusCounts, Error> {
        let _counting = self.counting.lock().await;
        // Counted by the request we waited for?
        if let Some((counts, true)) = self.cached(clock) {
            return Ok(counts);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let now = clock.now();
        let started = std::time::Instant::now();
        let counts = db
            .run(move |conn| Ok::<_, Error>(StatusCounts::count_everyone(conn, now)?))
            .await?;
        if let Ok(mut snapshot) = self.snapshot.lock() {
            *snapshot = Some(Snapshot {
                generation,
                counted_at: now,
                cost: TimeDelta::from_std(started.elapsed()).unwrap_or(TimeDelta::zero()),
                counts: counts.clone(),
            });
        }
        Ok(counts)
    }
}
