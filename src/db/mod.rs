//! The database: one connection type for PostgreSQL and SQLite, the pool, migrations,
//! and the few places where the two engines need different SQL.

mod limits;
pub mod presence;
pub mod schema;
pub mod search;
mod stamp;
mod statistics;

pub use limits::QueryLimits;
pub use stamp::{MaybeStamp, Stamp};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use diesel::connection::{
    AnsiTransactionManager, InstrumentationEvent, SimpleConnection, TransactionManager,
};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::metrics::{Metrics, is_sqlite_busy};

/// How long a SQLite writer waits for the lock before failing with "database is locked".
/// SQLite's busy handler is not fair (a waiter polls, and a writer that arrives between
/// polls can go first), so under back-to-back bulk invitations a writer may wait many
/// times the longest transaction: 10 seconds was seen to run out. Thirty still ends
/// before a reverse proxy's usual 60-second timeout, so a request that does run out gets
/// our answer ("nothing was changed, try again") rather than a gateway's.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// What can go wrong on the way to the database and back.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available")]
    Pool(#[from] r2d2::PoolError),
    #[error("cannot open the database")]
    Connect(#[source] r2d2::Error),
    #[error("the database task did not finish")]
    Task(#[source] tokio::task::JoinError),
    /// A read ran past its deadline and was stopped.
    #[error("the database read took longer than its deadline and was stopped")]
    TooSlow,
    /// Every slot for expensive reads was taken: refused at once, not queued.
    #[error("too many expensive reads at once")]
    Busy,
    /// Other work (a write, a cheap read) ran past its deadline, was stopped and rolled back.
    #[error("the database work took longer than its deadline and was stopped")]
    PastDeadline,
}

/// A connection to either engine. PostgreSQL is declared first: the derive tries the
/// variants in order, and we only ever build the one the configured URL names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Any constant works; all instances must agree on it.
pub const MIGRATION_LOCK_ID: i64 = 0x456e_726f_6c6c;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

/// A database URL whose engine has been checked, so that a typo never silently
/// becomes a SQLite file named after it.
#[derive(Clone)]
pub struct DatabaseUrl {
    engine: Engine,
    url: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // PostgreSQL URLs may carry a password.
        write!(f, "DatabaseUrl({:?}, {})", self.engine, self.redacted())
    }
}

impl DatabaseUrl {
    pub fn sqlite(path: PathBuf) -> Self {
        Self {
            engine: Engine::Sqlite,
            url: path.to_string_lossy().into_owned(),
        }
    }

    pub fn parse(input: &str) -> anyhow::Result<Self> {
        let input = input.trim();
        anyhow::ensure!(!input.is_empty(), "ENROLL_DATABASE_URL is empty");
        if input.starts_with("postgres://") || input.starts_with("postgresql://") {
            let parsed = url::Url::parse(input)
                .context("ENROLL_DATABASE_URL is not a valid postgres:// URL")?;
            anyhow::ensure!(
                parsed.host_str().is_some_and(|h| !h.is_empty()),
                "ENROLL_DATABASE_URL names no PostgreSQL host"
            );
            return Ok(Self {
                engine: Engine::Postgres,
                url: input.to_owned(),
            });
        }
        if let Some(path) = input
            .strip_prefix("sqlite://")
            .or_else(|| input.strip_prefix("sqlite:"))
        {
            anyhow::ensure!(!path.is_empty(), "ENROLL_DATABASE_URL names no SQLite file");
            return Ok(Self::sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = input.split_once("://") {
            anyhow::bail!(
                "ENROLL_DATABASE_URL uses the unsupported scheme {scheme:?}: \
                 use postgres://... or a SQLite file path"
            );
        }
        Ok(Self::sqlite(PathBuf::from(input)))
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => self.url.clone(),
        }
    }

    /// The SQLite file, for creating its folder before the first connection.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.engine == Engine::Sqlite).then(|| PathBuf::from(&self.url))
    }
}

/// Builds connections of the configured engine, with SQLite's per-connection settings.
pub struct DbConnectionManager {
    url: DatabaseUrl,
    metrics: Arc<Metrics>,
    limits: QueryLimits,
}

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.url.engine {
            Engine::Postgres => {
                // libpq starts OpenSSL on its first connection, and OpenSSL then frees its
                // state at process exit while other threads may still be using it (a
                // crash on exit: openssl/openssl#3505). Started here first, without that
                // exit handler, it never is.
                openssl_sys::init();
                let mut conn = diesel::PgConnection::establish(&self.url.url)
                    .map_err(r2d2::Error::ConnectionError)?;
                // A deadline on every statement (expensive reads set a shorter one per
                // transaction), and a backend that checks now and then whether we are
                // still there, so that a query whose client died does not run on.
                conn.batch_execute(&format!(
                    "SET statement_timeout = {}; SET client_connection_check_interval = 2000",
                    self.limits.write_timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Postgresql(conn))
            }
            Engine::Sqlite => {
                limits::install_sqlite_deadlines();
                let mut conn = diesel::SqliteConnection::establish(&self.url.url)
                    .map_err(r2d2::Error::ConnectionError)?;
                // Every statement on every connection passes here: the one place that sees
                // each "database is locked", whoever ran into it.
                let metrics = self.metrics.clone();
                conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                    if let InstrumentationEvent::FinishQuery {
                        error: Some(error), ..
                    } = event
                        && is_sqlite_busy(error)
                    {
                        let total = metrics.count_sqlite_busy();
                        tracing::warn!(
                            sqlite_busy_total = total,
                            "SQLite stayed locked longer than the busy timeout"
                        );
                    }
                });
                // busy_timeout first, so that the others wait for a lock instead of failing
                // (no longer than a statement may run: SQLite's progress handler does not
                // run while it waits); WAL lets readers run beside the writer; foreign keys
                // are off by default. A small page cache (128 KiB) for each connection: the
                // operating system's cache holds the database anyway, and at a million
                // users a dozen 1 MB caches were 16 MB of the server's memory.
                let busy_timeout_ms = match self.limits.write_timeout.as_millis() {
                    0 => SQLITE_BUSY_TIMEOUT_MS,
                    deadline => u32::try_from(deadline)
                        .unwrap_or(u32::MAX)
                        .min(SQLITE_BUSY_TIMEOUT_MS),
                };
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -128;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking()
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

pub type PooledConnection = r2d2::PooledConnection<DbConnectionManager>;

/// The pool, and the one way request handlers reach the database.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<DbConnectionManager>,
    engine: Engine,
    /// Identifies this database among others in the process (tests run many apps), for
    /// the per-thread read connections.
    id: u64,
    url: DatabaseUrl,
    metrics: Arc<Metrics>,
    limits: QueryLimits,
    statistics: Arc<statistics::Statistics>,
}

static NEXT_DB_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// SQLite connections for reads on the request threads, one per database.
    static READERS: std::cell::RefCell<std::collections::HashMap<u64, DbConnection>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

impl Db {
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> anyhow::Result<Self> {
        Self::connect_with(url, pool_size, QueryLimits::default())
    }

    /// [`Db::connect`] with the given deadlines and admission of expensive reads.
    pub fn connect_with(
        url: &DatabaseUrl,
        pool_size: u32,
        limits: QueryLimits,
    ) -> anyhow::Result<Self> {
        Self::build(url, pool_size, None, Arc::default(), limits)
    }

    /// One connection, outside any pool: a single attempt that fails at once with the
    /// server's own words (a pool would retry and log until its timeout).
    pub fn connect_once(url: &DatabaseUrl) -> anyhow::Result<DbConnection> {
        DbConnectionManager {
            url: url.clone(),
            metrics: Arc::default(),
            limits: QueryLimits::default(),
        }
        .connect()
        .with_context(|| format!("cannot connect to the database {}", url.redacted()))
    }

    /// Another pool to the same database, which opens connections as they are first
    /// needed and counts into the same metrics.
    pub fn lazy_pool(&self, pool_size: u32) -> anyhow::Result<Self> {
        Self::build(
            &self.url,
            pool_size,
            Some(1),
            self.metrics.clone(),
            self.limits.clone(),
        )
    }

    fn build(
        url: &DatabaseUrl,
        pool_size: u32,
        min_idle: Option<u32>,
        metrics: Arc<Metrics>,
        limits: QueryLimits,
    ) -> anyhow::Result<Self> {
        if let Some(path) = url.sqlite_path() {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                crate::files::create_private_dir_all(dir)
                    .with_context(|| format!("cannot create the folder {}", dir.display()))?;
            }
            // Created before SQLite opens it, which would make it (and its -wal and -shm
            // files, which take its permissions) readable by every user of the machine.
            if path != Path::new(":memory:") {
                crate::files::ensure_private_file(&path)
                    .with_context(|| format!("cannot create the database {}", path.display()))?;
            }
        }
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(min_idle)
            .connection_timeout(Duration::from_secs(10))
            // SQLite files do not go away under us; a PostgreSQL server can restart.
            .test_on_check_out(url.engine == Engine::Postgres)
            .build(DbConnectionManager {
                url: url.clone(),
                metrics: metrics.clone(),
                limits: limits.clone(),
            })
            .with_context(|| format!("cannot connect to the database {}", url.redacted()))?;
        Ok(Self {
            pool,
            engine: url.engine,
            id: NEXT_DB_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            url: url.clone(),
            metrics,
            limits,
            statistics: Arc::default(),
        })
    }

    /// The deadlines and admission this database's work runs under.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// This application's counters (shared by its pools).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// This pool's connections now, for `GET /metrics`.
    pub fn pool_use(&self) -> crate::metrics::PoolUse {
        let state = self.pool.state();
        crate::metrics::PoolUse {
            open: state.connections,
            idle: state.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Read-only work on a request thread. On SQLite it runs right here, on this thread's
    /// own connection: a read takes well under a millisecond and never waits for a writer
    /// (WAL), so it costs less than handing it to another thread. On PostgreSQL, whose
    /// answers take a network round trip, it goes to the blocking pool like any work.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
        T: Send + 'static,
    {
        if self.engine != Engine::Sqlite {
            return self.run(work).await;
        }
        READERS.with(|readers| {
            let mut readers = readers.borrow_mut();
            let conn = match readers.entry(self.id) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let manager = DbConnectionManager {
                        url: self.url.clone(),
                        metrics: self.metrics.clone(),
                        limits: self.limits.clone(),
                    };
                    entry.insert(manager.connect().map_err(DbError::Connect)?)
                }
            };
            // Not an expensive read (those go through `expensive_read`): the deadline of
            // every other statement.
            let deadline = limits::Deadline::set(self.limits.write_timeout);
            let result = work(conn);
            // A connection left inside a transaction (a panic, a bug) is not reused.
            if <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
            {
                readers.remove(&self.id);
            }
            match result {
                Err(_) if deadline.passed() => Err(DbError::PastDeadline.into()),
                other => other,
            }
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The database answers (the health check), with a connection free within a second:
    /// an instance whose every connection is busy is not ready for more.
    pub async fn ping(&self) -> Result<(), DbError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get_timeout(Duration::from_secs(1))
                .map_err(DbError::from)?;
            Ok(conn.batch_execute("SELECT 1")?)
        })
        .await
        .map_err(DbError::Task)?
    }

    /// A connection for code that is already off the async executor (CLI, mail worker).
    pub fn get(&self) -> Result<PooledConnection, r2d2::PoolError> {
        self.pool.get()
    }

    /// Runs blocking database work on the runtime's blocking thread pool.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let timeout = self.limits.write_timeout;
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            let deadline = limits::Deadline::set(timeout);
            let result = work(&mut conn);
            if result.is_err() && deadline.passed() {
                let total = metrics.count_query_limit_trip("write_deadline");
                tracing::warn!(
                    deadline_ms = timeout.as_millis(),
                    write_deadline_trips_total = total,
                    "database work ran past its deadline and was stopped (rolled back)"
                );
                // Whatever the statement reported, the cause is the deadline: the person
                // is told nothing changed and to try again (503), not that it broke (500).
                return Err(DbError::PastDeadline.into());
            }
            result
        })
        .await
        .map_err(DbError::Task)?
    }
}

/// Values bound in one statement at most: SQLite allows 32,766 in all, and a batch of
/// rows with many columns each must stay well under that.
pub const MAX_BOUND_PER_QUERY: usize = 500;

/// Inserts many rows in one statement per [`MAX_BOUND_PER_QUERY`]. Multi-row INSERT is not available through
/// the MultiConnection backend, so it runs on the inner connection of either engine.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut inserted = 0;
        for chunk in $rows.chunks($crate::db::MAX_BOUND_PER_QUERY) {
            inserted += match &mut *$conn {
                $crate::db::DbConnection::Postgresql(pg) => {
                    diesel::insert_into($table).values(chunk).execute(pg)
                }
                $crate::db::DbConnection::Sqlite(sqlite) => {
                    diesel::insert_into($table).values(chunk).execute(sqlite)
                }
            }?;
        }
        Ok::<usize, diesel::result::Error>(inserted)
    }};
}
pub(crate) use insert_rows;

/// Runs a query with its rows locked where the engine locks rows (PostgreSQL; `$lock` is
/// `for_update`, or `for_no_key_update` for rows that others only reference by key); on
/// SQLite the write transaction already holds the whole database. The query is written
/// once and built per engine, since its select clause is typed by the backend it runs
/// on. `$run` is how it runs: `load`, `first`, `get_result`. A longer lock clause goes
/// in brackets: `[for_update().skip_locked()]`.
macro_rules! locked {
    ($conn:expr, $lock:ident, $query:expr, $run:ident) => {
        $crate::db::locked!($conn, [$lock()], $query, $run)
    };
    ($conn:expr, [$($lock:tt)+], $query:expr, $run:ident) => {
        match &mut *$conn {
            $crate::db::DbConnection::Postgresql(pg) => $query.$($lock)+.$run(pg),
            $crate::db::DbConnection::Sqlite(sqlite) => $query.$run(sqlite),
        }
    };
}
pub(crate) use locked;

pub fn engine_of(conn: &DbConnection) -> Engine {
    match conn {
        DbConnection::Postgresql(_) => Engine::Postgres,
        DbConnection::Sqlite(_) => Engine::Sqlite,
    }
}

/// Runs `work` in a transaction that holds the write lock from the start.
///
/// On SQLite a plain `BEGIN` that reads and then writes fails with SQLITE_BUSY, without
/// waiting, when another connection wrote in between; `BEGIN IMMEDIATE` waits its turn.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    transaction_begun_by(conn, "BEGIN", work)
}

/// [`write_transaction`], whose commit on PostgreSQL does not wait for the WAL flush
/// (`synchronous_commit = off`, set in the same round trip as `BEGIN`). For records that
/// may be lost if the database server itself crashes within about half a second of the
/// commit, because what they record is safe to do again (see the outbox's delivery).
pub fn unflushed_write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    transaction_begun_by(conn, "BEGIN; SET LOCAL synchronous_commit = off", work)
}

/// A write transaction begun on PostgreSQL by `postgres_begin` (on SQLite always by
/// `BEGIN IMMEDIATE`).
fn transaction_begun_by<T, E, F>(
    conn: &mut DbConnection,
    postgres_begin: &str,
    work: F,
) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, postgres_begin)?
        }
    }
    type Manager = <DbConnection as Connection>::TransactionManager;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback_error) => Err(rollback_error.into()),
        },
    }
}

/// Applies pending migrations. On PostgreSQL an advisory lock makes instances that start
/// together take turns: the first applies them, the others find nothing left to do.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<usize> {
    let applied = match conn {
        DbConnection::Sqlite(inner) => inner
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
            .len(),
        DbConnection::Postgresql(inner) => {
            // Waiting for another instance's migrations, and building an index on a large
            // table, may both take longer than any statement's deadline. The connection
            // goes back to its pool after: its usual deadline is restored below.
            let usual: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
                "current_setting('statement_timeout')",
            ))
            .get_result(inner)?;
            inner.batch_execute("SET statement_timeout = 0")?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
                .execute(inner)?;
            let result = inner
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|done| done.len())
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
                .execute(inner)?;
            diesel::sql_query("SELECT set_config('statement_timeout', $1, false)")
                .bind::<diesel::sql_types::Text, _>(usual)
                .execute(inner)?;
            result?
        }
    };
    Ok(applied)
}

/// Migrations recorded in a SQLite database that this build does not have: the
/// database was written by a newer Enroll.
pub fn unknown_sqlite_migrations(
    conn: &mut diesel::SqliteConnection,
) -> anyhow::Result<Vec<String>> {
    use diesel::migration::MigrationSource;
    let known: Vec<String> =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("cannot list the migrations: {e}"))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
    let applied = conn
        .applied_migrations()
        .map_err(|e| anyhow::anyhow!("cannot read the migration state: {e}"))?;
    Ok(applied
        .into_iter()
        .map(|version| version.to_string())
        .filter(|version| !known.contains(version))
        .collect())
}

/// Whether migrations are still to be applied (readiness fails until they are).
pub fn has_pending_migrations(conn: &mut DbConnection) -> anyhow::Result<bool> {
    let pending = match conn {
        DbConnection::Sqlite(inner) => inner.has_pending_migration(SQLITE_MIGRATIONS),
        DbConnection::Postgresql(inner) => inner.has_pending_migration(POSTGRES_MIGRATIONS),
    };
    pending.map_err(|e| anyhow::anyhow!("cannot read the migration state: {e}"))
}

/// Refreshes the query planner's statistics after bulk changes. SQLite samples a bounded
/// number of rows per index (`analysis_limit`), so that this takes milliseconds at a
/// million users instead of reading every index whole. On PostgreSQL only the tables a
/// bulk change grows by a row per user and whose plans depend on it (`user_changes` grows
/// too, but is only read by its key): a bare `ANALYZE` also read the system catalogs,
/// two thirds of its time on a young database (60 ms against 20), paid after every
/// large invite while the outbox sends it.
pub fn optimize(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(inner) => {
            inner.batch_execute("PRAGMA analysis_limit = 1000; ANALYZE; PRAGMA optimize;")
        }
        DbConnection::Postgresql(inner) => inner
            .batch_execute("ANALYZE users, invitations, outbound_emails, user_tags, audit_events"),
    }
}

/// Whether a query failed on a unique index (an address invited twice at once).
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_their_engine() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@localhost/db")
                .unwrap()
                .engine(),
            Engine::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db")
                .unwrap()
                .sqlite_path(),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("data/enroll.db").unwrap().engine(),
            Engine::Sqlite
        );
        let err = DatabaseUrl::parse("mysql://localhost/db").unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }

    #[test]
    fn every_database_is_locked_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseUrl::sqlite(dir.path().join("busy.db")), 2).unwrap();
        let (mut holder, mut waiter) = (db.get().unwrap(), db.get().unwrap());
        holder.batch_execute("BEGIN IMMEDIATE").unwrap();
        // Fail at once rather than after the busy timeout.
        waiter.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        let error =
            write_transaction(&mut waiter, |_| Ok::<_, diesel::result::Error>(())).unwrap_err();
        assert!(is_sqlite_busy(&error), "{error}");
        assert_eq!(db.metrics().sqlite_busy_total(), 1);
        holder.batch_execute("COMMIT").unwrap();
        write_transaction(&mut waiter, |_| Ok::<_, diesel::result::Error>(())).unwrap();
        assert_eq!(db.metrics().sqlite_busy_total(), 1);
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db.example/enroll").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.redacted().contains("***"));
    }
}
