//! Rendered pages of the Users table, shared for a moment by the requests for the same
//! view.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;

use super::UserView;
use crate::principal::Principal;
use crate::users::EnrollmentStatus;
use crate::users::counts::StatusCounts;
use crate::users::list::{Cursor, ListQuery, PageFrom};
use crate::web::error::AppError;
use crate::web::request::AppState;

/// The rows of the Users table, rendered on their own so that a page of them can be
/// shared by the requests for the same view.
#[derive(Template)]
#[template(path = "users_rows.html")]
struct UsersRows {
    rows: Vec<UserView>,
}

/// One rendered page of the table, with what else depends only on the view.
pub struct TableView {
    pub(super) rows_html: Arc<str>,
    pub(super) row_count: usize,
    pub(super) next: Option<Cursor>,
    pub(super) previous: Option<Cursor>,
    /// Counts within a search (the unfiltered counts are cached on their own).
    pub(super) searched_counts: Option<StatusCounts>,
}

/// Rendered pages of the Users table, shared by all requests for the same view (same
/// search, filter, order, position and size) for a short while: a busy console renders
/// each view about once a second instead of once per request. A change made through
/// this instance empties it at once; other instances' changes, and statuses changing
/// with time, show within the freshness window (`ENROLL_USERS_PAGE_CACHE_MS`).
pub struct ViewCache {
    fresh_for: chrono::TimeDelta,
    entries: std::sync::Mutex<HashMap<String, CachedTable>>,
    /// Per account, the searches it may render at once.
    searches: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Per view being rendered, a lock that the other requests for it wait on, so that a
    /// view missing from the cache (first asked for, or after a change) is rendered once
    /// rather than by every request that arrives meanwhile.
    rendering: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Searches (not served from the cache) that one account renders at once; more wait
/// their turn, so that one person, or a script with their session, keeps at most this
/// many database threads busy with searches.
const SEARCHES_PER_ACCOUNT: usize = 1;

struct CachedTable {
    generation: u64,
    rendered_at: chrono::NaiveDateTime,
    table: Arc<TableView>,
    /// Since when one request has been rendering it again; the others keep getting this
    /// one meanwhile. A time rather than a flag, so that a request that never finishes
    /// (its client went away) hands the job on instead of leaving the view stale.
    refreshing_since: Option<chrono::NaiveDateTime>,
}

/// What the cache holds for a view.
enum Lookup {
    Fresh(Arc<TableView>),
    /// Old, and another request is already rendering it again.
    Stale(Arc<TableView>),
    Missing,
}

/// Views kept at most; beyond it the oldest goes.
const CACHED_VIEWS: usize = 64;

/// After this long, a re-render in progress is presumed abandoned.
const REFRESH_TAKEOVER: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl ViewCache {
    pub fn new(fresh_for: std::time::Duration) -> Self {
        Self {
            fresh_for: chrono::TimeDelta::from_std(fresh_for).unwrap_or_default(),
            entries: std::sync::Mutex::default(),
            searches: std::sync::Mutex::default(),
            rendering: std::sync::Mutex::default(),
        }
    }

    /// The lock of one view's rendering (see `rendering`).
    fn render_lock(&self, key: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut rendering = self.rendering.lock().ok()?;
        // Locks nobody holds or waits for are dropped now and then.
        if rendering.len() > 4 * CACHED_VIEWS {
            rendering.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Some(
            rendering
                .entry(key.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone(),
        )
    }

    /// Waits for the account's turn to run a search.
    async fn search_turn(
        &self,
        principal: &Principal,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let account = principal.account_id()?;
        let slots = {
            let mut searches = self.searches.lock().ok()?;
            // Accounts with no search running are forgotten now and then.
            if searches.len() > 1000 {
                searches.retain(|_, slots| Arc::strong_count(slots) > 1);
            }
            searches
                .entry(account.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(SEARCHES_PER_ACCOUNT)))
                .clone()
        };
        slots.acquire_owned().await.ok()
    }

    async fn render(
        query: &ListQuery,
        state: &AppState,
        principal: &Principal,
        now: chrono::NaiveDateTime,
    ) -> Result<TableView, AppError> {
        let (page, searched_counts) = state.ops.users_page(principal, query.clone(), now).await?;
        let rows: Vec<UserView> = page
            .rows
            .iter()
            .map(|row| UserView::new(row, now))
            .collect();
        Ok(TableView {
            row_count: rows.len(),
            rows_html: UsersRows { rows }.render()?.into(),
            next: page.next,
            previous: page.previous,
            searched_counts,
        })
    }

    /// A fresh table; or, when it is merely old, the old one while a single request
    /// (this one gets `Missing`) renders it again. A change made here always re-renders.
    fn lookup(&self, key: &str, generation: u64, now: chrono::NaiveDateTime) -> Lookup {
        if self.fresh_for <= chrono::TimeDelta::zero() {
            return Lookup::Missing;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return Lookup::Missing;
        };
        let Some(cached) = entries.get_mut(key).filter(|c| c.generation == generation) else {
            return Lookup::Missing;
        };
        if now - cached.rendered_at < self.fresh_for {
            Lookup::Fresh(cached.table.clone())
        } else if cached
            .refreshing_since
            .is_some_and(|since| now - since < REFRESH_TAKEOVER)
        {
            Lookup::Stale(cached.table.clone())
        } else {
            cached.refreshing_since = Some(now);
            Lookup::Missing
        }
    }

    /// The view, if rendered for this generation within the freshness window (by the
    /// request this one waited for).
    fn fresh(
        &self,
        key: &str,
        generation: u64,
        now: chrono::NaiveDateTime,
    ) -> Option<Arc<TableView>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|c| {
                c.generation == generation
                    && c.refreshing_since.is_none()
                    && now - c.rendered_at < self.fresh_for
            })
            .map(|c| c.table.clone())
    }

    fn key(query: &ListQuery) -> String {
        let from = match &query.from {
            PageFrom::Start => String::new(),
            PageFrom::After(c) => format!("after:{}", c.encode()),
            PageFrom::Before(c) => format!("before:{}", c.encode()),
        };
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            query.sort.slug(),
            query.direction.slug(),
            query.status.map_or("", EnrollmentStatus::slug),
            query.expiring_soon,
            query.per_page,
            from,
            query.search.trim().to_lowercase()
        )
    }

    pub(super) async fn table(
        &self,
        query: &ListQuery,
        state: &AppState,
        principal: &Principal,
        now: chrono::NaiveDateTime,
    ) -> Result<Arc<TableView>, AppError> {
        let generation = state.ops.generation();
        let key = Self::key(query);
        match self.lookup(&key, generation, now) {
            Lookup::Fresh(table) | Lookup::Stale(table) => return Ok(table),
            Lookup::Missing => {}
        }
        // Single flight: whoever renders this view first holds its lock; the others wait,
        // then find it fresh. (With the cache off there is nothing to share.)
        let lock = (self.fresh_for > chrono::TimeDelta::zero())
            .then(|| self.render_lock(&key))
            .flatten();
        let _rendering = match &lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        if lock.is_some()
            && let Some(table) = self.fresh(&key, generation, now)
        {
            return Ok(table);
        }
        let _turn = if query.search.trim().is_empty() {
            None
        } else {
            self.search_turn(principal).await
        };
        let table = match Self::render(query, state, principal, now).await {
            Ok(table) => Arc::new(table),
            Err(error) => {
                // Let the next request try again rather than serve the old one forever.
                if let Ok(mut entries) = self.entries.lock()
                    && let Some(cached) = entries.get_mut(&key)
                {
                    cached.refreshing_since = None;
                }
                return Err(error);
            }
        };
        if self.fresh_for > chrono::TimeDelta::zero()
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= CACHED_VIEWS
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, cached)| cached.rendered_at)
                    .map(|(key, _)| key.clone())
            {
                entries.remove(&oldest);
            }
            entries.insert(
                key,
                CachedTable {
                    generation,
                    rendered_at: now,
                    table: table.clone(),
                    refreshing_since: None,
                },
            );
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_holding(key: &str, rendered_at: chrono::NaiveDateTime) -> ViewCache {
        let cache = ViewCache::new(std::time::Duration::from_secs(1));
        let table = Arc::new(TableView {
            rows_html: Arc::from(""),
            row_count: 0,
            next: None,
            previous: None,
            searched_counts: None,
        });
        cache.entries.lock().unwrap().insert(
            key.to_owned(),
            CachedTable {
                generation: 0,
                rendered_at,
                table,
                refreshing_since: None,
            },
        );
        cache
    }

    #[tokio::test]
    async fn an_account_runs_one_search_at_a_time_others_are_not_held_up() {
        use crate::accounts::Role;
        let cache = ViewCache::new(std::time::Duration::from_secs(1));
        let ada = Principal::account("ada", "ada@example.com", Role::Helpdesk, None);
        let alan = Principal::account("alan", "alan@example.com", Role::Helpdesk, None);
        let running = cache.search_turn(&ada).await.expect("a turn");
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            cache.search_turn(&ada),
        );
        assert!(waiting.await.is_err(), "a second search of Ada waits");
        assert!(cache.search_turn(&alan).await.is_some());
        drop(running);
        assert!(cache.search_turn(&ada).await.is_some());
    }

    #[test]
    fn one_request_re_renders_a_stale_view_and_an_abandoned_one_is_taken_over() {
        let start = chrono::NaiveDateTime::default();
        let cache = cache_holding("view", start);
        assert!(matches!(cache.lookup("view", 0, start), Lookup::Fresh(_)));
        let later = start + chrono::TimeDelta::seconds(2);
        assert!(matches!(cache.lookup("view", 0, later), Lookup::Missing));
        assert!(matches!(cache.lookup("view", 0, later), Lookup::Stale(_)));
        // The renderer never came back (its client went away): someone else takes over.
        let much_later = later + REFRESH_TAKEOVER;
        assert!(matches!(
            cache.lookup("view", 0, much_later),
            Lookup::Missing
        ));
        assert!(matches!(
            cache.lookup("view", 0, much_later),
            Lookup::Stale(_)
        ));
        // A change made here (a new generation) is never served from the cache.
        assert!(matches!(cache.lookup("view", 1, start), Lookup::Missing));
    }
}
