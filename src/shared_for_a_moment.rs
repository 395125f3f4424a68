//! Answers shared for a moment by the requests that ask for the same thing: the Users
//! page's rendered tables and the API's pages of SearchUsers. A busy console makes each
//! one about once per freshness window instead of once per request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDateTime, TimeDelta};

/// After this long, a remaking in progress is presumed abandoned.
const REMAKE_TAKEOVER: TimeDelta = TimeDelta::seconds(10);

/// Answers by key, each shared while fresh and only within the generation of changes it
/// was made in (a change made through this instance moves the generation on, and is
/// never hidden by an older answer). When one is missing or old, one request makes it
/// again and the others wait for it (if missing) or keep getting the old one (if old):
/// no stampede after a change or an expiry.
pub struct SharedForAMoment<V> {
    fresh_for: TimeDelta,
    capacity: usize,
    entries: Mutex<HashMap<String, Shared<V>>>,
    /// Per answer being made, a lock the other requests for it wait on.
    making: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct Shared<V> {
    generation: u64,
    made_at: NaiveDateTime,
    answer: Arc<V>,
    /// Since when one request has been making it again; the others keep getting this
    /// one meanwhile. A time rather than a flag, so that a request that never finishes
    /// (its client went away) hands the job on instead of leaving the answer stale.
    remaking_since: Option<NaiveDateTime>,
}

/// What is shared for a key.
enum Lookup<V> {
    Fresh(Arc<V>),
    /// Old, and another request is already making it again.
    Stale(Arc<V>),
    Missing,
}

impl<V> SharedForAMoment<V> {
    /// Shares each answer for `fresh_for` (zero: nothing is shared), at most `capacity`
    /// of them (beyond it the oldest goes).
    pub fn new(fresh_for: std::time::Duration, capacity: usize) -> Self {
        Self {
            fresh_for: TimeDelta::from_std(fresh_for).unwrap_or_default(),
            capacity,
            entries: Mutex::default(),
            making: Mutex::default(),
        }
    }

    fn is_on(&self) -> bool {
        self.fresh_for > TimeDelta::zero()
    }

    /// The answer for `key`, shared if one made in `generation` is fresh (or old while
    /// another request makes it again); otherwise made by `make`, once for all the
    /// requests waiting for it. An error is not shared: the next request tries again.
    pub async fn get_or_make<E, Fut>(
        &self,
        key: String,
        generation: u64,
        now: NaiveDateTime,
        make: impl FnOnce() -> Fut,
    ) -> Result<Arc<V>, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        match self.lookup(&key, generation, now) {
            Lookup::Fresh(answer) | Lookup::Stale(answer) => return Ok(answer),
            Lookup::Missing => {}
        }
        let lock = self.making_lock(&key);
        let _making = match &lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        if lock.is_some()
            && let Some(answer) = self.fresh(&key, generation, now)
        {
            return Ok(answer);
        }
        let answer = match make().await {
            Ok(answer) => Arc::new(answer),
            Err(error) => {
                if let Ok(mut entries) = self.entries.lock()
                    && let Some(shared) = entries.get_mut(&key)
                {
                    shared.remaking_since = None;
                }
                return Err(error);
            }
        };
        self.put(key, generation, now, answer.clone());
        Ok(answer)
    }

    /// The lock of one answer's making (none when nothing is shared).
    fn making_lock(&self, key: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        if !self.is_on() {
            return None;
        }
        let mut making = self.making.lock().ok()?;
        // Locks nobody holds or waits for are dropped now and then.
        if making.len() > 4 * self.capacity {
            making.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Some(making.entry(key.to_owned()).or_default().clone())
    }

    /// A fresh answer; or, when it is merely old, the old one while a single request
    /// (this one gets `Missing`) makes it again.
    fn lookup(&self, key: &str, generation: u64, now: NaiveDateTime) -> Lookup<V> {
        if !self.is_on() {
            return Lookup::Missing;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return Lookup::Missing;
        };
        let Some(shared) = entries.get_mut(key).filter(|s| s.generation == generation) else {
            return Lookup::Missing;
        };
        if now - shared.made_at < self.fresh_for {
            Lookup::Fresh(shared.answer.clone())
        } else if shared
            .remaking_since
            .is_some_and(|since| now - since < REMAKE_TAKEOVER)
        {
            Lookup::Stale(shared.answer.clone())
        } else {
            shared.remaking_since = Some(now);
            Lookup::Missing
        }
    }

    /// The answer, if made for this generation within the freshness window (by the
    /// request this one waited for).
    fn fresh(&self, key: &str, generation: u64, now: NaiveDateTime) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|s| {
                s.generation == generation
                    && s.remaking_since.is_none()
                    && now - s.made_at < self.fresh_for
            })
            .map(|s| s.answer.clone())
    }

    fn put(&self, key: String, generation: u64, now: NaiveDateTime, answer: Arc<V>) {
        if !self.is_on() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity
            && !entries.contains_key(&key)
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, shared)| shared.made_at)
                .map(|(key, _)| key.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            key,
            Shared {
                generation,
                made_at: now,
                answer,
                remaking_since: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(key: &str, made_at: NaiveDateTime) -> SharedForAMoment<&'static str> {
        let shared = SharedForAMoment::new(std::time::Duration::from_secs(1), 4);
        shared.put(key.to_owned(), 0, made_at, Arc::new("answer"));
        shared
    }

    #[test]
    fn one_request_remakes_an_old_answer_and_an_abandoned_one_is_taken_over() {
        let start = NaiveDateTime::default();
        let shared = holding("view", start);
        assert!(matches!(shared.lookup("view", 0, start), Lookup::Fresh(_)));
        let later = start + TimeDelta::seconds(2);
        assert!(matches!(shared.lookup("view", 0, later), Lookup::Missing));
        assert!(matches!(shared.lookup("view", 0, later), Lookup::Stale(_)));
        // The maker never came back (its client went away): someone else takes over.
        let much_later = later + REMAKE_TAKEOVER;
        assert!(matches!(
            shared.lookup("view", 0, much_later),
            Lookup::Missing
        ));
        assert!(matches!(
            shared.lookup("view", 0, much_later),
            Lookup::Stale(_)
        ));
        // A change made here (a new generation) is never answered from before it.
        assert!(matches!(shared.lookup("view", 1, start), Lookup::Missing));
    }

    #[tokio::test]
    async fn requests_for_a_missing_answer_wait_for_one_making_and_errors_are_not_kept() {
        let shared = Arc::new(SharedForAMoment::<u32>::new(
            std::time::Duration::from_secs(1),
            4,
        ));
        let now = NaiveDateTime::default();
        let made = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut waiting = Vec::new();
        for _ in 0..8 {
            let (shared, made) = (shared.clone(), made.clone());
            waiting.push(tokio::spawn(async move {
                shared
                    .get_or_make("view".to_owned(), 0, now, || async move {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok::<_, ()>(made.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                    })
                    .await
            }));
        }
        for answer in waiting {
            assert_eq!(*answer.await.unwrap().unwrap(), 0);
        }
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
        let failed = shared
            .get_or_make("other".to_owned(), 0, now, || async { Err::<u32, _>("no") })
            .await;
        assert!(failed.is_err());
        let retried = shared
            .get_or_make("other".to_owned(), 0, now, || async { Ok::<_, ()>(7) })
            .await;
        assert_eq!(*retried.unwrap(), 7);
    }

    #[test]
    fn beyond_its_capacity_the_oldest_answer_goes() {
        let start = NaiveDateTime::default();
        let shared = SharedForAMoment::new(std::time::Duration::from_secs(60), 2);
        for (n, key) in ["a", "b", "c"].into_iter().enumerate() {
            let at = start + TimeDelta::seconds(i64::try_from(n).unwrap());
            shared.put(key.to_owned(), 0, at, Arc::new(n));
        }
        let later = start + TimeDelta::seconds(3);
        assert!(matches!(shared.lookup("a", 0, later), Lookup::Missing));
        assert!(matches!(shared.lookup("c", 0, later), Lookup::Fresh(_)));
    }
}
