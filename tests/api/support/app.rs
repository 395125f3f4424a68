//! The application under test: started on a random port with its own data, and what a
//! test reads from its database directly.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use enroll::accounts::{self, NewPassword, Role};
use enroll::clock::Clock;
use enroll::config::Config;
use enroll::db::DbConnection;
use enroll::startup::{Application, ApplicationHandle};
use enroll::users::EmailAddress;
use secrecy::SecretString;

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, HELPDESK_EMAIL, HELPDESK_PASSWORD};
use super::{TEST_SESSION_KEY, TestData, TestSmtp, current_engine};

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    browser_with_jar(Arc::new(reqwest::cookie::Jar::default()))
}

pub fn browser_with_jar(jar: Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        // The server closes idle connections after 5 s; a browser retries a request that
        // meets one being closed, reqwest does not, so idle ones are let go first.
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The main client's cookies, for tests that copy or replay them.
    pub jar: Arc<reqwest::cookie::Jar>,
    pub smtp: TestSmtp,
    pub clock: Clock,
    pub db: enroll::db::Db,
    pub data_dir: PathBuf,
    pub data: Arc<TestData>,
    /// Marks the Users page's cached views out of date, as a change made through the
    /// app does (`deliver_due_emails` changes statuses from outside its requests).
    pub(super) forget_cached_views: Box<dyn Fn() + Send + Sync>,
    pub(super) handle: ApplicationHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.handle.stop();
    }
}

/// A change to the configuration made as the test runs.
pub type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// How a test wants its app.
pub struct AppOptions {
    pub seed_accounts: bool,
    pub smtp_url: Option<String>,
    /// Write email as files, like the embedded default, instead of using SMTP.
    pub mail_to_files: bool,
    /// Changes to the test configuration (timeouts, limits, DKIM...).
    pub tweak: Option<fn(&mut Config)>,
    /// Reuse another app's data folder and database (a restart, or a second instance).
    pub data: Option<Arc<TestData>>,
    pub clock: Clock,
    /// Run the app's own outbox worker, which sends in the background as in production.
    /// Off by default: the app then starts with the worker idle (`mail_workers = 0`, no
    /// sender thread claims anything) and a test sends with `deliver_due_emails()` when
    /// it chooses. On for the tests of the worker itself: delivery under faults, restarts,
    /// scale-out, leases.
    pub background_mail: bool,
    /// Listen here rather than on a new port (a test that must know the port first).
    pub listener: Option<TcpListener>,
    /// Changes to the configuration that need values known only as the test runs.
    pub configure: Option<ConfigChange>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            seed_accounts: true,
            smtp_url: None,
            mail_to_files: false,
            tweak: None,
            data: None,
            clock: Clock::system(),
            background_mail: false,
            listener: None,
            configure: None,
        }
    }
}

pub fn test_config(data: &TestData, smtp_url: &str) -> Config {
    let mut config = Config::from_defaults();
    config.data_dir = data.path().to_owned();
    if let Some(database) = &data.database {
        config.database_url = Some(SecretString::from(database.url.clone()));
        config.session_key = Some(SecretString::from(TEST_SESSION_KEY));
    }
    config.smtp_url = Some(SecretString::from(smtp_url.to_owned()));
    config.smtp_timeout_seconds = 5;
    config.http_workers = Some(1);
    config.db_pool_size = 4;
    config.mail_workers = 1;
    config.mail_poll_ms = 100;
    config.mail_retry_base_seconds = 1;
    config.mail_retry_max_seconds = 2;
    config.mail_lease_seconds = 10;
    config.log = "warn".to_owned();
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let smtp = TestSmtp::start();
    spawn_app_with_smtp(options, smtp).await
}

pub async fn spawn_app_with_smtp(options: AppOptions, smtp: TestSmtp) -> TestApp {
    let data = options
        .data
        .unwrap_or_else(|| TestData::new(current_engine()));
    let smtp_url = options.smtp_url.unwrap_or_else(|| smtp.url());
    let mut config = test_config(&data, &smtp_url);
    if options.mail_to_files {
        config.smtp_url = None;
    }
    if !options.background_mail {
        config.mail_workers = 0;
    }
    if let Some(tweak) = options.tweak {
        tweak(&mut config);
    }
    if let Some(configure) = options.configure {
        configure(&mut config);
    }
    let listener = options
        .listener
        .unwrap_or_else(|| TcpListener::bind("127.0.0.1:0").expect("a free port"));
    let app = Application::build_with(config, listener, options.clock.clone())
        .await
        .expect("the application starts");
    let port = app.port();
    let db = app.state().db.clone();
    let ops = app.state().ops.clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let test_app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: browser_with_jar(jar.clone()),
        jar,
        smtp,
        clock: options.clock,
        db,
        data_dir: data.path().to_owned(),
        data,
        forget_cached_views: Box::new(move || ops.forget_counts()),
        handle,
    };
    if options.seed_accounts {
        test_app.add_account(ADMIN_EMAIL, ADMIN_PASSWORD, Role::Administrator);
        test_app.add_account(HELPDESK_EMAIL, HELPDESK_PASSWORD, Role::Helpdesk);
    }
    test_app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The Cookie header the main client sends.
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&self.url("/").parse().unwrap())
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn add_account(&self, email: &str, password: &str, role: Role) {
        let email = EmailAddress::parse(email).unwrap();
        let hash = NewPassword::parse(&SecretString::from(password.to_owned()), email.as_str())
            .unwrap()
            .hash()
            .unwrap();
        let mut conn = self.db.get().unwrap();
        accounts::create(&mut conn, self.clock.now(), &email, &hash, role).unwrap();
    }

    /// The id of the user with this address, from the database.
    pub fn account_id(&self, email: &str) -> String {
        use enroll::db::schema::accounts;
        accounts::table
            .filter(accounts::email_key.eq(email.to_ascii_lowercase()))
            .select(accounts::id)
            .first(&mut *self.conn())
            .unwrap()
    }

    pub fn user_id(&self, email: &str) -> String {
        use enroll::db::schema::users;
        let mut conn = self.db.get().unwrap();
        users::table
            .filter(users::email_key.eq(email.to_ascii_lowercase()))
            .select(users::id)
            .first(&mut *conn)
            .expect("the user exists")
    }

    /// Marks the Users page's counts and cached views out of date after a change made
    /// straight in the database.
    pub fn forget_cached_views(&self) {
        (self.forget_cached_views)();
    }

    pub fn conn(&self) -> enroll::db::PooledConnection {
        self.db.get().unwrap()
    }

    pub fn count(&self, table: &str) -> i64 {
        use diesel::sql_types::BigInt;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        let conn: &mut DbConnection = &mut conn;
        let query = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"));
        let row: Count = match conn {
            DbConnection::Postgresql(pg) => query.get_result(pg),
            DbConnection::Sqlite(sqlite) => query.get_result(sqlite),
        }
        .unwrap();
        row.n
    }
}
