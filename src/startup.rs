//! Builds the running application on a listener it is given: pool, migrations, mail
//! worker, sessions, and the HTTP server. Tests bind port 0 and read the port back.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::cookie::Key;
use actix_web::dev::ServerHandle;
use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::TimeDelta;
use secrecy::ExposeSecret;

use crate::accounts;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::presence::Presence;
use crate::db::{self, Db, Engine};
use crate::mail::outbox;
use crate::mail::{MailKey, MailWorker, Mailer, RetryPolicy, WorkerSettings};
use crate::operations::Operations;
use crate::web::health::Readiness;
use crate::web::request::AppState;
use crate::web::server::http_server;

/// How soon a change of the public URL made through another instance applies here.
const PUBLIC_URL_RELOAD: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the planner's statistics are checked for staleness.
const STATISTICS_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Application {
    port: u16,
    server: ServerHandle,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    state: AppState,
    worker: Arc<Mutex<Option<MailWorker>>>,
    presence: Arc<Presence>,
}

impl Application {
    /// Binds the configured address and starts everything.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Self::build_with(config, listener, Clock::system()).await
    }

    /// Starts on `listener`, with `clock` as the source of "now".
    pub async fn build_with(
        config: Config,
        listener: TcpListener,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let database_url = config.database_url()?;
        let secret = session_secret(&config, database_url.engine())?;
        let cookie_key = Key::derive_from(&secret);
        let mail_key = MailKey::derive(&secret);
        let sign_in_sealer = crate::crypto::Sealer::derive(&secret, b"enroll sign-in factors v1");
        let credential_key = crate::credentials::CredentialKey::derive(&secret);
        drop(secret);
        let oidc = match config.oidc_settings()? {
            Some(settings) => Some(crate::oidc::Oidc::new(settings)?),
            None => None,
        };
        let db = Db::connect_with(&database_url, config.db_pool_size, config.query_limits())?;
        let mailer = mailer(&config)?;
        let port = listener.local_addr()?.port();
        let readiness = Readiness::default();
        let worker_settings = worker_settings(&config);
        tracing::info!(
            database = %database_url.redacted(),
            mail = %mailer.describe(),
            address = %listener.local_addr()?,
            "starting Enroll"
        );
        let (worker, mail_queue) = MailWorker::prepare(mailer, mail_key.clone());
        let page_cache = std::time::Duration::from_millis(config.users_page_cache_ms);
        let ops = Operations::new(
            db.clone(),
            clock.clone(),
            mail_queue,
            config.resend_limit_per_hour,
        )
        .with_sign_in(crate::operations::SignInSetup {
            sealer: sign_in_sealer,
            issuer_label: "Enroll".to_owned(),
            oidc,
        })
        .with_credential_key(credential_key)
        .with_search_pages_shared_for(page_cache);
        let state = AppState {
            ops,
            db: db.clone(),
            clock: clock.clone(),
            config: Arc::new(config),
            readiness: readiness.clone(),
            limits: Arc::new(crate::web::limits::Limits::new(db.metrics().clone())),
            public_url_is_https: Arc::default(),
            mail_db: Arc::default(),
            views: Arc::new(crate::web::users::ViewCache::new(page_cache)),
        };
        // Polled from now on, so that probes are answered while migrations run.
        let server = http_server(state.clone(), cookie_key, listener)?;
        let server_handle = server.handle();
        let serving = tokio::spawn(server);
        // The server answers probes (503 "starting") while migrations run; another instance
        // may be holding the migration lock.
        let migration_db = db.clone();
        let sealing_key = mail_key.clone();
        let migrated = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let mut conn = migration_db.get()?;
            let applied = db::run_migrations(&mut conn)?;
            let sealed = outbox::seal_plain_bodies(&mut conn, &sealing_key)?;
            if sealed > 0 {
                tracing::info!(
                    sealed,
                    "sealed the bodies of emails queued by an earlier version"
                );
            }
            Ok(applied)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|applied| applied);
        let applied = match migrated {
            Ok(applied) => applied,
            Err(error) => {
                server_handle.stop(false).await;
                return Err(error.context("cannot prepare the database"));
            }
        };
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        // Statistics missing or stale (a bulk load or a restore made elsewhere): refreshed
        // now, and looked at again every minute.
        let watched = db.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(STATISTICS_CHECK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                watched.refresh_statistics_if_stale().await;
            }
        });
        state.reload_public_url().await;
        readiness.set_ready();
        // Count users by status, and build the search index, now rather than on the
        // first visit to the Users page.
        let ops = state.ops.clone();
        tokio::spawn(async move {
            ops.build_search_index_now().await;
            ops.count_users_now().await;
        });
        // This instance's lock (which tells the others when it dies) and, on PostgreSQL,
        // what it hears from them.
        let presence =
            Arc::new(Presence::start(&database_url).context("cannot register this instance")?);
        // The worker's own connections: each mail thread holds one through its batch, and
        // must not starve the pages; one more for the watcher, and one spare.
        tracing::info!(instance = %presence.instance_id(), "this instance's id (its claims on email carry it)");
        state.ops.listen_with(&presence);
        let mail_db = db.lazy_pool(worker_settings.threads as u32 + 2)?;
        let _ = state.mail_db.set(mail_db.clone());
        let worker = worker.start(mail_db, clock.clone(), worker_settings, presence.clone());
        let app = Self {
            port,
            server: server_handle,
            serving,
            state,
            worker: Arc::new(Mutex::new(Some(worker))),
            presence,
        };
        app.announce_setup_code().await?;
        Ok(app)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn handle(&self) -> ApplicationHandle {
        ApplicationHandle {
            server: self.server.clone(),
            worker: self.worker.clone(),
            presence: self.presence.clone(),
        }
    }

    /// Serves until stopped (Ctrl-C, SIGTERM, or a handle), then lets the mail worker
    /// finish the email in hand.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Another instance may change the public URL, whose scheme decides whether
        // cookies here are Secure: read it again now and then, for as long as we serve.
        let state = self.state.clone();
        let keep_public_url_current = async move {
            let mut every = tokio::time::interval(PUBLIC_URL_RELOAD);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await; // The first tick is at once; the URL was read at start.
            loop {
                every.tick().await;
                state.reload_public_url().await;
            }
        };
        let result = tokio::select! {
            served = self.serving => served.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            () = keep_public_url_current => Ok(()),
        };
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            tokio::task::spawn_blocking(move || worker.shutdown())
                .await
                .ok();
        }
        result
    }

    /// While no console account exists, prints a one-time code and the page that
    /// exchanges it for the first administrator.
    async fn announce_setup_code(&self) -> anyhow::Result<()> {
        let code = self
            .state
            .ops
            .issue_setup_code()
            .await
            .context("cannot issue a setup code")?;
        if let Some(code) = code {
            let listen = self.state.config.listen;
            let host = if listen.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                listen.ip().to_string()
            };
            tracing::warn!(
                setup_url = %format!("http://{host}:{}/setup", self.port),
                setup_code = %code,
                "no console account exists yet: open the setup page and enter this one-time code \
                 to create the first administrator (or run `enroll admin add`); the code works for {} hours",
                accounts::setup_code::VALID_HOURS
            );
        }
        Ok(())
    }
}

/// Stops a running application from elsewhere (tests, signal handlers).
#[derive(Clone)]
pub struct ApplicationHandle {
    server: ServerHandle,
    worker: Arc<Mutex<Option<MailWorker>>>,
    presence: Arc<Presence>,
}

impl ApplicationHandle {
    /// Sends every email due now and returns when done (see [`MailWorker::deliver_due`]);
    /// blocking, so call it off the async threads.
    pub fn deliver_due_emails(&self) -> anyhow::Result<usize> {
        let worker = self
            .worker
            .lock()
            .map_err(|_| anyhow::anyhow!("the mail worker's lock is poisoned"))?;
        match worker.as_ref() {
            Some(worker) => worker.deliver_due(),
            None => Ok(0),
        }
    }

    /// Stops accepting requests and tells the mail worker to stop, without waiting.
    pub fn stop(&self) {
        if let Ok(worker) = self.worker.lock()
            && let Some(worker) = worker.as_ref()
        {
            worker.stop();
        }
        // Its listening connection closes, and its lock (its claims' owner) goes with it.
        self.presence.stop();
        // The command is sent when called; the returned future only waits for it.
        drop(self.server.stop(true));
    }
}

fn mailer(config: &Config) -> anyhow::Result<Mailer> {
    let timeout = std::time::Duration::from_secs(config.smtp_timeout_seconds);
    let mailer = match &config.smtp_url {
        Some(url) => Mailer::smtp(
            url,
            timeout,
            u32::try_from(config.mail_workers).unwrap_or(u32::MAX),
        )?,
        None => Mailer::files(&config.mail_dir())?,
    };
    match (
        &config.dkim_domain,
        &config.dkim_selector,
        &config.dkim_key_file,
    ) {
        (None, None, None) => Ok(mailer),
        (Some(domain), Some(selector), Some(key_file)) => {
            mailer.with_dkim(domain, selector, key_file)
        }
        _ => anyhow::bail!(
            "DKIM needs all three of ENROLL_DKIM_DOMAIN, ENROLL_DKIM_SELECTOR and ENROLL_DKIM_KEY_FILE"
        ),
    }
}

fn worker_settings(config: &Config) -> WorkerSettings {
    let seconds = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
    WorkerSettings {
        threads: config.mail_workers,
        poll_interval: std::time::Duration::from_millis(config.mail_poll_ms),
        lease: seconds(config.mail_lease_seconds),
        // Small claims spread a burst over all the threads.
        batch_size: 5,
        retry: RetryPolicy {
            first_delay: seconds(config.mail_retry_base_seconds),
            max_delay: seconds(config.mail_retry_max_seconds),
            horizon: seconds(config.mail_retry_hours.saturating_mul(3600)),
        },
    }
}

/// The secret from which the cookie keys and the key that seals queued email bodies
/// are derived: ENROLL_SESSION_KEY, or (SQLite only) generated once and kept in the data
/// folder so restarts keep people signed in. Never in the database, so that a copy of
/// the database alone opens nothing.
pub(crate) fn session_secret(config: &Config, engine: Engine) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.session_key {
        let secret = secret.expose_secret();
        anyhow::ensure!(
            secret.len() >= 32,
            "ENROLL_SESSION_KEY must be at least 32 characters (try: openssl rand -base64 48)"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    anyhow::ensure!(
        engine == Engine::Sqlite,
        "ENROLL_SESSION_KEY is required with PostgreSQL: every instance must sign cookies \
         with the same key (generate one with: openssl rand -base64 48)"
    );
    let path = config.data_dir().join("session.key");
    read_or_create_key_file(&path)
}

fn read_or_create_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let bytes = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not a valid session key file", path.display()))?;
        anyhow::ensure!(
            bytes.len() >= 32,
            "{} holds too short a key",
            path.display()
        );
        return Ok(bytes);
    }
    if let Some(dir) = path.parent() {
        crate::files::create_private_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let bytes = crate::crypto::random_bytes::<64>().to_vec();
    write_private_file(path, STANDARD.encode(&bytes).as_bytes())
        .with_context(|| format!("cannot write the session key to {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a session key");
    Ok(bytes)
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    crate::files::create_private_file(path)?.write_all(contents)
}
