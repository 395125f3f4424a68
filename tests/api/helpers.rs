//! Starts the real application on a random port with a fresh database and a real SMTP
//! server on loopback, and drives it over HTTP as a browser would.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use enroll::accounts::{self, NewPassword, Role};
use enroll::clock::Clock;
use enroll::config::Config;
use enroll::db::DbConnection;
use enroll::startup::{Application, ApplicationHandle};
use enroll::users::EmailAddress;
use mailin_embedded::response::{NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};
use scraper::{Html, Selector};
use secrecy::SecretString;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const HELPDESK_EMAIL: &str = "helpdesk@example.com";
pub const HELPDESK_PASSWORD: &str = "helpful desk battery staple";

/// An email as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub to: Vec<String>,
    pub raw: String,
    pub received_at: Instant,
}

impl ReceivedEmail {
    /// An email written by the file transport.
    pub fn from_file(path: &std::path::Path) -> Self {
        Self {
            to: Vec::new(),
            raw: std::fs::read_to_string(path).expect("a readable .eml file"),
            received_at: Instant::now(),
        }
    }

    fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(self.raw.as_bytes()).expect("a parseable email")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body of the first part with this content type.
    pub fn part(&self, content_type: &str) -> String {
        fn find(mail: &mailparse::ParsedMail<'_>, content_type: &str) -> Option<String> {
            if mail.ctype.mimetype == content_type {
                return mail.get_body().ok().map(|body| body.replace("\r\n", "\n"));
            }
            mail.subparts.iter().find_map(|p| find(p, content_type))
        }
        find(&self.parsed(), content_type).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// The enrollment link's path (`/enroll/<token>`), from the plain-text part.
    pub fn enrollment_path(&self) -> String {
        let text = self.text();
        let start = text
            .find("/enroll/")
            .expect("an enrollment link in the email");
        let token: String = text[start + "/enroll/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        format!("/enroll/{token}")
    }

    pub fn enrollment_link(&self) -> String {
        let text = self.text();
        let start = text.find("http").expect("a link in the email");
        text[start..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// What the test SMTP server does with each recipient.
#[derive(Clone, Default)]
pub struct SmtpBehaviour {
    /// Recipients containing this text are refused with 550.
    pub refuse_containing: Option<String>,
    /// How long the server takes to accept each message (after it has it).
    pub delay_per_message: Duration,
}

#[derive(Clone)]
struct Recorder {
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    behaviour: Arc<Mutex<SmtpBehaviour>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        let refuse = self
            .behaviour
            .lock()
            .unwrap()
            .refuse_containing
            .clone()
            .is_some_and(|text| to.contains(&text));
        if refuse { NO_MAILBOX } else { OK }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.received.lock().unwrap().push(ReceivedEmail {
            to: std::mem::take(&mut self.to),
            raw: String::from_utf8_lossy(&self.data).into_owned(),
            received_at: Instant::now(),
        });
        let delay = self.behaviour.lock().unwrap().delay_per_message;
        std::thread::sleep(delay);
        OK
    }
}

/// A real SMTP server (mailin-embedded) on a random loopback port.
#[derive(Clone)]
pub struct TestSmtp {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    behaviour: Arc<Mutex<SmtpBehaviour>>,
}

impl TestSmtp {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(SmtpBehaviour::default()));
        let recorder = Recorder {
            received: received.clone(),
            behaviour: behaviour.clone(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(recorder);
        server
            .with_name("test-smtp")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self {
            port,
            received,
            behaviour,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn delay_each_message(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay_per_message = delay;
    }

    pub fn clear_refusals(&self) {
        self.behaviour.lock().unwrap().refuse_containing = None;
    }

    pub fn refuse_recipients_containing(&self, text: &str) {
        self.behaviour.lock().unwrap().refuse_containing = Some(text.to_owned());
    }

    pub fn received(&self) -> Vec<ReceivedEmail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` emails have arrived, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedEmail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} emails, the SMTP server has {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// All emails to `address`, oldest first.
    pub fn to(&self, address: &str) -> Vec<ReceivedEmail> {
        self.received()
            .into_iter()
            .filter(|e| e.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits for the `n`-th (1-based) email to `address`.
    pub async fn wait_for_nth_to(&self, address: &str, n: usize) -> ReceivedEmail {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let emails = self.to(address);
            if emails.len() >= n {
                return emails[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "expected email #{n} to {address}, got {}",
                emails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

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

pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

/// Runs a test body with `engine` as the engine of every app it spawns; on PostgreSQL
/// without a server to use, says so and passes.
pub async fn run_on(engine: Engine, test: impl std::future::Future<Output = ()>) {
    if engine == Engine::Postgres && postgres_url().is_none() {
        eprintln!(
            "skipped on PostgreSQL: {POSTGRES_URL_VARIABLE} is not set \
             (e.g. postgres://postgres@127.0.0.1:5432/test); .ci/run sets it"
        );
        return;
    }
    ENGINE.scope(engine, test).await
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
    handle: ApplicationHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.handle.stop();
    }
}

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
        }
    }
}

pub fn test_config(data: &TestData, smtp_url: &str) -> Config {
    let mut config = Config::from_defaults();
    config.data_dir = data.path().to_owned();
    if let Some(database) = &data.database {
        config.database_url = Some(database.url.clone());
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
    if let Some(tweak) = options.tweak {
        tweak(&mut config);
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let app = Application::build_with(config, listener, options.clock.clone())
        .await
        .expect("the application starts");
    let port = app.port();
    let db = app.state().db.clone();
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
        handle,
    };
    if options.seed_accounts {
        test_app.add_account(ADMIN_EMAIL, ADMIN_PASSWORD, Role::Administrator);
        test_app.add_account(HELPDESK_EMAIL, HELPDESK_PASSWORD, Role::Helpdesk);
    }
    test_app
}

/// Form fields in order, repeated names allowed.
pub type Fields = Vec<(String, String)>;

pub fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// Visible text, whitespace folded.
    pub fn text(&self) -> String {
        let html = self.html();
        let body = Selector::parse("body").unwrap();
        html.select(&body)
            .next()
            .map(|b| b.text().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn csrf_token(&self) -> String {
        self.input_value("input[name=csrf_token]")
            .expect("a page with a CSRF token")
    }

    pub fn input_value(&self, selector: &str) -> Option<String> {
        let html = self.html();
        let selector = Selector::parse(selector).unwrap();
        html.select(&selector)
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_owned))
    }

    /// The values of every input named `name`, in order.
    pub fn input_values(&self, name: &str) -> Vec<String> {
        let html = self.html();
        let selector = Selector::parse(&format!("input[name={name}]")).unwrap();
        html.select(&selector)
            .map(|e| e.value().attr("value").unwrap_or_default().to_owned())
            .collect()
    }

    /// The message shown beside the field with this id, if any.
    pub fn field_error(&self, field_id: &str) -> Option<String> {
        let html = self.html();
        let selector = Selector::parse(&format!("#{field_id}-error")).unwrap();
        html.select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_owned())
    }

    /// Whether the input with this id is labelled with exactly this text.
    pub fn label_for(&self, field_id: &str) -> Option<String> {
        let html = self.html();
        let selector = Selector::parse(&format!("label[for=\"{field_id}\"]")).unwrap();
        html.select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_owned())
    }

    pub fn assert_redirect_to(&self, location: &str) {
        assert_eq!(
            self.status,
            303,
            "expected a redirect, got {}: {}",
            self.status,
            self.text()
        );
        assert_eq!(self.location.as_deref(), Some(location));
    }
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

    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> Page {
        let response = client.get(self.url(path)).send().await.expect("GET works");
        Page::read(response).await
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(&self.client, path).await
    }

    /// Follows a redirect chain the way a browser does, up to five hops.
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..5 {
            if page.status != 303 && page.status != 302 {
                break;
            }
            let location = page.location.clone().expect("a Location header");
            page = self.get(&location).await;
        }
        page
    }

    pub async fn post_with(&self, client: &reqwest::Client, path: &str, form: &Fields) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let response = client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", &self.address)
            .body(body)
            .send()
            .await
            .expect("POST works");
        Page::read(response).await
    }

    /// Posts a form with the CSRF token of the page at `form_page`, as a browser would
    /// after opening that page.
    pub async fn submit(&self, form_page: &str, action: &str, form: &Fields) -> Page {
        let page = self.get(form_page).await;
        let mut form = form.clone();
        form.push(("csrf_token".to_owned(), page.csrf_token()));
        self.post_with(&self.client, action, &form).await
    }

    pub async fn login_with(&self, client: &reqwest::Client, email: &str, password: &str) -> Page {
        let page = self.get_with(client, "/login").await;
        let form = fields(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &page.csrf_token()),
        ]);
        self.post_with(client, "/login", &form).await
    }

    pub async fn login_admin(&self) {
        let page = self
            .login_with(&self.client, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await;
        page.assert_redirect_to("/users");
    }

    pub fn settings_fields() -> Fields {
        fields(&[
            ("organization_name", "Example Corp"),
            ("contact_email", "it-help@example.com"),
            ("sender_name", "Example Corp IT"),
            ("sender_address", "no-reply@example.com"),
            ("public_url", "https://enroll.example.com"),
            ("validity_days", "7"),
            ("custom_message", "Welcome aboard!\nSee you on Monday."),
            ("after_join_url", "https://intranet.example.com/welcome"),
            ("reminder_days", ""),
            ("action", "save"),
        ])
    }

    /// Signs in as administrator and saves the settings with some fields changed.
    pub async fn set_up_invitations_with(&self, changes: &[(&str, &str)]) {
        self.login_admin().await;
        let mut form = Self::settings_fields();
        for (name, value) in changes {
            if let Some(field) = form.iter_mut().find(|(k, _)| k == name) {
                field.1 = (*value).to_owned();
            }
        }
        let page = self
            .submit("/settings/invitations", "/settings/invitations", &form)
            .await;
        assert_eq!(page.status, 303, "settings were not saved: {}", page.text());
    }

    /// Signs in as administrator and saves the invitation settings.
    pub async fn set_up_invitations(&self) {
        self.login_admin().await;
        let page = self
            .submit(
                "/settings/invitations",
                "/settings/invitations",
                &Self::settings_fields(),
            )
            .await;
        assert_eq!(page.status, 303, "settings were not saved: {}", page.text());
    }

    /// Invites people (first, last, email) through the form; returns the response.
    pub async fn invite(&self, people: &[(&str, &str, &str)]) -> Page {
        let mut form: Fields = Vec::new();
        for (first, last, email) in people {
            form.push(("first_name".into(), (*first).into()));
            form.push(("last_name".into(), (*last).into()));
            form.push(("email".into(), (*email).into()));
        }
        form.push(("action".into(), "send".into()));
        self.submit("/users/invite", "/users/invite", &form).await
    }

    /// The id of the user with this address, from the database.
    pub fn user_id(&self, email: &str) -> String {
        use enroll::db::schema::users;
        let mut conn = self.db.get().unwrap();
        users::table
            .filter(users::email_key.eq(email.to_ascii_lowercase()))
            .select(users::id)
            .first(&mut *conn)
            .expect("the user exists")
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

    /// Selects users by id on the Users page and presses a button.
    pub async fn act_on_users(&self, action: &str, ids: &[String], extra: &[(&str, &str)]) -> Page {
        let mut form: Fields = ids
            .iter()
            .map(|id| ("user_id".to_owned(), id.clone()))
            .collect();
        form.extend(fields(extra));
        self.submit("/users", action, &form).await
    }

    /// The status label shown for this user on the Users page.
    pub async fn status_of(&self, email: &str) -> String {
        let page = self.get(&format!("/users?q={}", urlencode(email))).await;
        let html = page.html();
        let row_selector = Selector::parse("tbody tr").unwrap();
        let badge = Selector::parse(".badge").unwrap();
        for row in html.select(&row_selector) {
            let text: String = row.text().collect();
            if text.contains(email) {
                return row
                    .select(&badge)
                    .next()
                    .map(|b| b.text().collect::<String>().trim().to_owned())
                    .unwrap_or_default();
            }
        }
        panic!("{email} is not on the Users page: {}", page.text());
    }

    /// Waits until the user shows this status (the worker sends in the background).
    pub async fn wait_for_status(&self, email: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.status_of(email).await;
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{email} stayed {now}, expected {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Page {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Self {
            status,
            location,
            body,
            headers,
        }
    }
}
