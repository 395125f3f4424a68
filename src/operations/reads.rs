//! What the pages read: the Users table and its counts, a user's history, the audit log.

use chrono::NaiveDateTime;

use super::{Error, Operations, Permission, Principal, Result};
use crate::audit::{self, Action, AuditQuery, AuditRow, NewAuditEvent};
use crate::users::counts::StatusCounts;
use crate::users::history::{self, Entry};
use crate::users::list::{self, ListQuery, Page, UserRow};
use crate::users::search_index::SearchIndex;
use crate::users::tags::{self, Tag};

impl Operations {
    /// One page of the Users table, with the counts by status within a search (the
    /// unfiltered counts come from [`Operations::status_counts`]).
    pub async fn users_page(
        &self,
        principal: &Principal,
        query: ListQuery,
        now: NaiveDateTime,
    ) -> Result<(Page, Option<StatusCounts>)> {
        principal.require(Permission::ViewUsers)?;
        // A search (or the plain list) the index can answer is a scan in memory: without
        // the database while no look at its log is due, else a cheap read; rows it could
        // not make are read by id.
        if let Some(term) = SearchIndex::term_of(&query)
            && self.search_index.wait_until_built(&self.db).await
        {
            let generation = self.generation();
            let found = match self
                .search_index
                .find_in_memory(&query, &term, now, generation)
            {
                Some(found) => Some(found),
                None => {
                    let (index, query) = (self.search_index.clone(), query.clone());
                    self.db
                        .read(move |conn| {
                            Ok::<_, Error>(index.find(conn, &query, &term, now, generation)?)
                        })
                        .await?
                }
            };
            if let Some(found) = found {
                let page = match list::page_if_whole(&query, found.rows, now) {
                    Ok(page) => page,
                    Err(rows) => {
                        let query = query.clone();
                        self.db
                            .read(move |conn| {
                                Ok::<_, Error>(list::page_of_found(conn, &query, rows, now)?)
                            })
                            .await?
                    }
                };
                if found.counts.is_some() {
                    self.db.metrics().count_users_search("index");
                }
                return Ok((page, found.counts));
            }
        }
        if !query.search.trim().is_empty() {
            self.db.metrics().count_users_search("database");
        }
        // Otherwise a search or a filter is an expensive read (admitted, with a
        // deadline); the plain list is a keyset page and its counts are cached.
        let expensive =
            !query.search.trim().is_empty() || query.status.is_some() || query.expiring_soon;
        let work = move |conn: &mut crate::db::DbConnection| {
            let page = list::page(conn, &query, now)?;
            let counts = if query.search.trim().is_empty() {
                None
            } else {
                Some(StatusCounts::within_search(conn, &query, &page, now)?)
            };
            Ok((page, counts))
        };
        if expensive {
            self.db.expensive_read(work).await
        } else {
            self.db.read(work).await
        }
    }

    /// Users by status, over everyone; a few seconds old at most.
    pub async fn status_counts(&self, principal: &Principal) -> Result<StatusCounts> {
        principal.require(Permission::ViewUsers)?;
        self.counts.get(&self.db, &self.clock).await
    }

    /// Builds the search index ahead of the first search.
    pub async fn build_search_index_now(&self) {
        self.search_index.wait_until_built(&self.db).await;
    }

    /// Counts users by status ahead of the first visit to the Users page.
    pub async fn count_users_now(&self) {
        if let Err(error) = self.counts.get(&self.db, &self.clock).await {
            tracing::warn!(%error, "could not count users by status");
        }
    }

    /// The audit entry of an export: who took which view.
    pub async fn record_export(&self, principal: &Principal, view: String) -> Result<()> {
        principal.require(Permission::Export)?;
        let event = NewAuditEvent::new(
            self.clock.now(),
            &principal.actor(),
            Action::Export,
            None,
            view,
        );
        self.db
            .run(move |conn| Ok(audit::record(conn, &[event])?))
            .await
    }

    /// One batch of an export, read on a connection borrowed for it alone.
    pub async fn export_batch(
        &self,
        principal: &Principal,
        query: ListQuery,
        now: NaiveDateTime,
    ) -> Result<Page> {
        principal.require(Permission::Export)?;
        self.db
            .expensive_read(move |conn| Ok(list::page(conn, &query, now)?))
            .await
    }

    /// A user as the Users page shows them, their timeline, oldest first, and their tags.
    pub async fn user_history(
        &self,
        principal: &Principal,
        user_id: String,
        now: NaiveDateTime,
    ) -> Result<(UserRow, Vec<Entry>, Vec<Tag>)> {
        principal.require(Permission::ViewUsers)?;
        self.db
            .expensive_read(move |conn| {
                let (user, entries) = history::load(conn, &user_id, now)?.ok_or(Error::NotFound)?;
                let tags = tags::of_user(conn, &user_id)?;
                Ok((user, entries, tags))
            })
            .await
    }

    /// A page of the audit log, newest first, and whether older entries exist.
    pub async fn audit_page(
        &self,
        principal: &Principal,
        query: AuditQuery,
    ) -> Result<(Vec<AuditRow>, bool)> {
        principal.require(Permission::ViewAudit)?;
        self.db
            .expensive_read(move |conn| Ok(audit::page(conn, &query)?))
            .await
    }
}
