//! Deadlines on database work, and the admission of expensive reads.
//!
//! PostgreSQL: every connection starts with `statement_timeout` at the write deadline
//! and `client_connection_check_interval`, so that a backend whose client (this
//! process) is gone stops its query instead of running on; an expensive read runs in a
//! read-only transaction with `SET LOCAL statement_timeout` at the read deadline.
//! SQLite has no statement timeout: every connection this process opens gets a progress
//! handler (through `sqlite3_auto_extension`) that interrupts a statement once the
//! deadline of the thread running it has passed. Connections are used by one thread at
//! a time, so the thread's deadline is the work's deadline.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
use diesel::r2d2::ManageConnection;
use libsqlite3_sys as ffi;

use super::{DbConnection, DbConnectionManager, DbError, Engine, READERS};

/// The limits one application's database work runs under.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    pub read_timeout: Duration,
    /// Zero: none.
    pub write_timeout: Duration,
    expensive: Arc<tokio::sync::Semaphore>,
    expensive_max: usize,
}

impl QueryLimits {
    pub fn new(read_timeout: Duration, write_timeout: Duration, expensive_reads: usize) -> Self {
        let expensive_max = expensive_reads.max(1);
        Self {
            read_timeout,
            write_timeout,
            expensive: Arc::new(tokio::sync::Semaphore::new(expensive_max)),
            expensive_max,
        }
    }

    /// A slot for an expensive read, if one is free now (never waits).
    pub(super) fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.expensive.clone().try_acquire_owned().ok()
    }

    /// Expensive reads running now, and how many may run at once.
    pub fn expensive_in_use(&self) -> (usize, usize) {
        (
            self.expensive_max - self.expensive.available_permits(),
            self.expensive_max,
        )
    }
}

impl Default for QueryLimits {
    /// What `enroll` uses with no configuration (see `Config::query_limits`).
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(30), 5)
    }
}

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// This thread's deadline for SQLite statements, until dropped (then the previous one).
pub(crate) struct Deadline {
    previous: Option<Instant>,
    at: Option<Instant>,
}

impl Deadline {
    /// `after` zero: no deadline.
    pub(crate) fn set(after: Duration) -> Self {
        let at = (!after.is_zero()).then(|| Instant::now() + after);
        let previous = DEADLINE.with(|d| d.replace(at));
        Self { previous, at }
    }

    pub(crate) fn passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.previous));
    }
}

/// SQLite virtual-machine steps between two looks at the clock: about a few
/// microseconds of work, so a statement stops within a millisecond of its deadline.
const PROGRESS_STEPS: std::ffi::c_int = 1000;

unsafe extern "C" fn interrupt_past_deadline(_: *mut std::ffi::c_void) -> std::ffi::c_int {
    // `try_with`: never panic across the C boundary (a thread being torn down).
    let passed = DEADLINE
        .try_with(|d| d.get().is_some_and(|at| Instant::now() >= at))
        .unwrap_or(false);
    std::ffi::c_int::from(passed)
}

unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _error: *mut *mut std::ffi::c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> std::ffi::c_int {
    // SAFETY: SQLite calls this with the connection it is opening; the handler has no
    // state to free and lives as long as the program.
    unsafe {
        ffi::sqlite3_progress_handler(
            db,
            PROGRESS_STEPS,
            Some(interrupt_past_deadline),
            std::ptr::null_mut(),
        );
    }
    ffi::SQLITE_OK
}

/// Makes every SQLite connection opened from now on honour the thread's deadline.
pub(crate) fn install_sqlite_deadlines() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a function with the signature SQLite expects; it is called
        // on each later sqlite3_open.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(on_open)) };
        if rc != ffi::SQLITE_OK {
            tracing::error!(rc, "could not install SQLite's deadline handler");
        }
    });
}

impl super::Db {
    /// An expensive read (a search, a filter, an export batch, a history): refused at once
    /// with [`DbError::Busy`] when every slot for them is taken, and stopped with
    /// [`DbError::TooSlow`] at the read deadline. It runs off the request threads (on
    /// SQLite too, on that thread's own connection), so that nothing cheap waits behind
    /// it, and on PostgreSQL in a read-only transaction with its own statement timeout.
    pub async fn expensive_read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(permit) = self.limits.admit() else {
            let (_, max) = self.limits.expensive_in_use();
            let total = self.metrics.count_query_limit_trip("admission");
            tracing::warn!(
                expensive_reads = max,
                admission_refusals_total = total,
                "refused an expensive read: every slot for them is taken (503)"
            );
            return Err(DbError::Busy.into());
        };
        let (pool, timeout, engine) = (self.pool.clone(), self.limits.read_timeout, self.engine);
        let (db_id, url, metrics, limits) = (
            self.id,
            self.url.clone(),
            self.metrics.clone(),
            self.limits.clone(),
        );
        let trips = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let deadline = Deadline::set(timeout);
            let result = match engine {
                Engine::Postgres => {
                    let mut conn = pool.get().map_err(DbError::from)?;
                    read_only_within(&mut conn, timeout, work)
                }
                Engine::Sqlite => READERS.with(|readers| {
                    let mut readers = readers.borrow_mut();
                    let conn = match readers.entry(db_id) {
                        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                        std::collections::hash_map::Entry::Vacant(entry) => {
                            let manager = DbConnectionManager {
                                url,
                                metrics,
                                limits,
                            };
                            entry.insert(manager.connect().map_err(DbError::Connect)?)
                        }
                    };
                    let result = work(conn);
                    if <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn) {
                        readers.remove(&db_id);
                    }
                    result
                }),
            };
            match result {
                Err(_) if deadline.passed() => {
                    let total = trips.count_query_limit_trip("read_deadline");
                    tracing::warn!(
                        deadline_ms = timeout.as_millis(),
                        read_deadline_trips_total = total,
                        "stopped a read that ran past its deadline (503)"
                    );
                    Err(DbError::TooSlow.into())
                }
                other => other,
            }
        })
        .await
        .map_err(DbError::Task)?
    }
}

/// `work` in a read-only transaction whose statements stop after `timeout` (PostgreSQL).
fn read_only_within<T, E, F>(conn: &mut DbConnection, timeout: Duration, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DbError>,
{
    let query = |e: diesel::result::Error| E::from(DbError::Query(e));
    match conn {
        // The deadline set in the same round trip as `BEGIN`.
        DbConnection::Postgresql(inner) => AnsiTransactionManager::begin_transaction_sql(
            inner,
            &format!(
                "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
                timeout.as_millis().max(1)
            ),
        )
        .map_err(query)?,
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction(inner).map_err(query)?;
        }
    }
    type Manager = <DbConnection as Connection>::TransactionManager;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn).map_err(query)?;
            Ok(value)
        }
        Err(error) => {
            // A cancelled statement leaves the transaction aborted: roll it back, or the
            // connection is not reused.
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    #[test]
    fn a_sqlite_statement_past_its_deadline_is_interrupted() {
        install_sqlite_deadlines();
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT count(*) FROM n";
        let started = Instant::now();
        let deadline = Deadline::set(Duration::from_millis(50));
        let error = conn.batch_execute(endless).unwrap_err();
        assert!(deadline.passed(), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(deadline);
        // Without a deadline the same connection works on.
        conn.batch_execute("SELECT 1").unwrap();
    }
}
