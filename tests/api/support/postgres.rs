//! Which engine a test runs on, and a fresh PostgreSQL database per test, dropped after.

use std::sync::Arc;

use diesel::prelude::*;

/// Which database engine a test runs on: SQLite always, PostgreSQL when
/// `ENROLL_TEST_POSTGRES_URL` names a server the tests may create databases on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub const POSTGRES_URL_VARIABLE: &str = "ENROLL_TEST_POSTGRES_URL";

/// Test-only cookie key for PostgreSQL instances (which refuse to start without one).
pub const TEST_SESSION_KEY: &str = "test-session-key-that-is-long-enough-0123456789";

tokio::task_local! {
    static ENGINE: Engine;
}

pub fn current_engine() -> Engine {
    ENGINE.try_with(|engine| *engine).unwrap_or(Engine::Sqlite)
}

/// The configured server's URL; on loopback without TLS unless it says otherwise. libpq's
/// OpenSSL cleans itself up when the test process exits, while pool threads of apps still
/// alive may be inside it (a SIGSEGV after every test passed; diesel-rs/diesel#3441), and
/// TLS to a server on the same machine protects nothing.
pub fn postgres_url() -> Option<String> {
    let configured = std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())?;
    let Ok(mut url) = url::Url::parse(&configured) else {
        return Some(configured);
    };
    let on_loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if on_loopback && !url.query_pairs().any(|(name, _)| name == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    Some(url.to_string())
}

/// Runs a test body with `engine` as the engine of every app it spawns. PostgreSQL tests
/// are ignored when no server is configured (tests/api/main.rs), so one that runs
/// without it was forced to: it fails, saying what it needs.
pub async fn run_on(engine: Engine, test: impl std::future::Future<Output = ()>) {
    if engine == Engine::Postgres {
        require_postgres();
    }
    ENGINE.scope(engine, test).await
}

/// Fails the test unless a PostgreSQL server is configured.
pub fn require_postgres() {
    assert!(
        postgres_url().is_some(),
        "this test needs PostgreSQL: set {POSTGRES_URL_VARIABLE} \
         (e.g. postgres://postgres@127.0.0.1:5432/test); .ci/run sets it"
    );
}

/// A PostgreSQL database of its own for one test, dropped afterwards.
pub struct PostgresDatabase {
    name: String,
    admin_url: String,
    pub url: String,
}

impl PostgresDatabase {
    pub fn create() -> Self {
        let admin_url = postgres_url().expect("ENROLL_TEST_POSTGRES_URL is set");
        let name = format!("enroll_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VARIABLE}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("CREATE DATABASE works");
        let mut url = url::Url::parse(&admin_url).expect("a valid PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        Self {
            name,
            admin_url,
            url: url.to_string(),
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// What outlives one app of a test: its data folder and, on PostgreSQL, its database.
pub struct TestData {
    pub dir: tempfile::TempDir,
    pub database: Option<PostgresDatabase>,
}

impl TestData {
    pub fn new(engine: Engine) -> Arc<Self> {
        Arc::new(Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
            database: (engine == Engine::Postgres).then(PostgresDatabase::create),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}
