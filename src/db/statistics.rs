//! The planner's statistics, refreshed after bulk changes. Plans are written to stay
//! reasonable without statistics (see `search.rs`), but a large invite, an import or a
//! removal of thousands changes the tables enough that the planner's numbers should
//! follow: PostgreSQL's autovacuum gets there eventually, and SQLite never does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Db, DbError};

/// Rows changed through this instance before the statistics are refreshed.
const REFRESH_AFTER_ROWS: u64 = 500;

#[derive(Debug, Default)]
pub(super) struct Statistics {
    changed: AtomicU64,
    refreshing: AtomicBool,
}

impl Db {
    /// `rows` users or invitations were added, replaced or removed. Past a few hundred
    /// (since the last time), the statistics are refreshed in the background, one
    /// refresh at a time.
    pub fn rows_changed(&self, rows: usize) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let total = self.statistics.changed.fetch_add(rows, Ordering::SeqCst) + rows;
        if total >= REFRESH_AFTER_ROWS {
            self.refresh_statistics();
        }
    }

    /// Refreshes the statistics if the database says they are missing or stale: tables
    /// filled by someone else (a bulk load, a restore, another instance) before anyone
    /// analysed them. One small query; run at start and every minute.
    pub async fn refresh_statistics_if_stale(&self) {
        let stale = self
            .run(|conn| statistics_are_stale(conn).map_err(DbError::from))
            .await;
        match stale {
            Ok(true) => self.refresh_statistics(),
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, "could not read the planner's statistics"),
        }
    }

    /// Refreshes the statistics in the background, unless a refresh is running.
    pub fn refresh_statistics(&self) {
        if self.statistics.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.statistics.changed.store(0, Ordering::SeqCst);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.statistics.refreshing.store(false, Ordering::SeqCst);
            return;
        };
        let db = self.clone();
        runtime.spawn(async move {
            let started = std::time::Instant::now();
            let result = db
                .run(|conn| super::optimize(conn).map_err(DbError::from))
                .await;
            match result {
                Ok(()) => tracing::info!(
                    took_ms = started.elapsed().as_millis(),
                    "refreshed the query planner's statistics after a bulk change"
                ),
                Err(error) => tracing::warn!(%error, "could not refresh the planner's statistics"),
            }
            db.statistics.refreshing.store(false, Ordering::SeqCst);
        });
    }
}

/// More than a thousand users or invitations, and statistics that never saw them or saw
/// fewer than four fifths of what is there now.
fn statistics_are_stale(conn: &mut super::DbConnection) -> diesel::QueryResult<bool> {
    use diesel::prelude::*;
    use diesel::sql_types::Bool;
    let query = match conn {
        super::DbConnection::Postgresql(_) => {
            "EXISTS (SELECT 1 FROM pg_stat_user_tables \
             WHERE relname IN ('users', 'invitations') AND n_live_tup > 1000 \
             AND n_mod_since_analyze > n_live_tup / 5)"
        }
        super::DbConnection::Sqlite(_) => {
            "(SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1') = 0 \
             AND (SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1001)) > 1000"
        }
    };
    diesel::select(diesel::dsl::sql::<Bool>(query)).get_result(conn)
}
