//! Rendered pages of the Users table, shared for a moment by the requests for the same
//! view.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;

use super::UserView;
use crate::principal::Principal;
use crate::shared_for_a_moment::SharedForAMoment;
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
    tables: SharedForAMoment<TableView>,
    /// Per account, the searches it may render at once.
    searches: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// Searches (not served from the cache) that one account renders at once; more wait
/// their turn, so that one person, or a script with their session, keeps at most this
/// many database threads busy with searches.
const SEARCHES_PER_ACCOUNT: usize = 1;

/// Views kept at most; beyond it the oldest goes.
const CACHED_VIEWS: usize = 64;

impl ViewCache {
    pub fn new(fresh_for: std::time::Duration) -> Self {
        Self {
            tables: SharedForAMoment::new(fresh_for, CACHED_VIEWS),
            searches: std::sync::Mutex::default(),
        }
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
        &self,
        query: &ListQuery,
        state: &AppState,
        principal: &Principal,
        now: chrono::NaiveDateTime,
    ) -> Result<TableView, AppError> {
        let _turn = if query.search.trim().is_empty() {
            None
        } else {
            self.search_turn(principal).await
        };
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
        self.tables
            .get_or_make(Self::key(query), state.ops.generation(), now, || {
                self.render(query, state, principal, now)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
