//! Settings from flags and `ENROLL_*` environment variables, validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::Role;
use crate::db::DatabaseUrl;

#[derive(Debug, Parser)]
#[command(
    name = "enroll",
    version,
    about = "Enroll: invite people to your organization by email",
    long_about = "Enroll is a web console in which administrators invite people by email, \
                  help-desk staff resend invitations, and removed users' links stop working.\n\n\
                  With no configuration it keeps its data in ./data (SQLite, email written as \
                  .eml files) and listens on 127.0.0.1:8080. Every option also reads the \
                  ENROLL_* environment variable shown beside it.",
    after_help = "`enroll admin add --email E --role administrator|helpdesk` reads the new \
                  account's password from ENROLL_ADMIN_PASSWORD, or asks for it on the terminal.\n\
                  `enroll backup --to FILE` (or ENROLL_BACKUP_TO) and `enroll restore --from FILE` \
                  (or ENROLL_RESTORE_FROM) copy the SQLite database; back up PostgreSQL with pg_dump."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web console and the email worker (the default)
    Serve,
    /// Apply pending database migrations, then exit
    Migrate,
    /// Manage console accounts from a script
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Copy the SQLite database to a file while the console runs (PostgreSQL: pg_dump)
    Backup {
        /// The backup file to write (replaced only once the new copy is whole and checked)
        #[arg(long, env = "ENROLL_BACKUP_TO")]
        to: PathBuf,
    },
    /// Check a backup, then make it the SQLite database (stop the console first)
    Restore {
        /// The backup file to restore
        #[arg(long, env = "ENROLL_RESTORE_FROM")]
        from: PathBuf,
    },
    /// Check the database, the mail server, the public URL, the clock and DKIM; exit
    /// status 0 only when every check passes
    Doctor,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add a console account. The password comes from ENROLL_ADMIN_PASSWORD, or is
    /// asked on the terminal.
    Add {
        /// The account's email address (its sign-in name)
        #[arg(long, env = "ENROLL_ADMIN_EMAIL")]
        email: String,
        /// What the account may do (no default: giving someone full control is a choice)
        #[arg(long, env = "ENROLL_ADMIN_ROLE", value_enum)]
        role: Role,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where data lives when not configured otherwise: the SQLite file, the session key, mail files
    #[arg(long, env = "ENROLL_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// postgres://user:pass@host/db, or a SQLite file path (sqlite://path also works).
    /// Default: <data dir>/enroll.db
    // A secret (it may hold the password): hidden from --help, redacted from Debug.
    #[arg(
        long,
        env = "ENROLL_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<SecretString>,

    /// Database connections per instance
    #[arg(long, env = "ENROLL_DB_POOL_SIZE", default_value_t = 8, global = true)]
    pub db_pool_size: u32,

    /// Address and port to listen on
    #[arg(
        long,
        env = "ENROLL_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// HTTP worker threads (default: one per core)
    #[arg(long, env = "ENROLL_HTTP_WORKERS", global = true)]
    pub http_workers: Option<usize>,

    /// Secret (at least 32 characters) that signs session and flash cookies and encrypts
    /// queued email bodies (keep it with backups). Required with PostgreSQL so that every
    /// instance shares it; on SQLite it is generated once and kept in <data dir>/session.key
    #[arg(
        long,
        env = "ENROLL_SESSION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub session_key: Option<SecretString>,

    /// Sign a console session out after this many minutes without a request
    #[arg(
        long,
        env = "ENROLL_SESSION_IDLE_MINUTES",
        default_value_t = 60,
        global = true
    )]
    pub session_idle_minutes: u32,

    /// Sign a console session out this many hours after sign-in, however active
    #[arg(
        long,
        env = "ENROLL_SESSION_MAX_HOURS",
        default_value_t = 12,
        global = true
    )]
    pub session_max_hours: u32,

    /// Send email through this SMTP server, in lettre's URL form:
    /// smtp://host:25, smtp://user:pass@host:587?tls=required (STARTTLS), smtps://host:465.
    /// Without it, email is written as .eml files to the mail directory
    #[arg(long, env = "ENROLL_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<SecretString>,

    /// Where email is written when no SMTP server is configured. Default: <data dir>/mail
    #[arg(long, env = "ENROLL_MAIL_DIR", global = true)]
    pub mail_dir: Option<PathBuf>,

    /// Give up on an SMTP conversation after this many seconds (then retry later)
    #[arg(
        long,
        env = "ENROLL_SMTP_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub smtp_timeout_seconds: u64,

    /// Email sender threads per instance, each with its own SMTP connection
    #[arg(
        long,
        env = "ENROLL_MAIL_WORKERS",
        default_value_t = 4,
        global = true,
        value_parser = at_least_one_mail_worker
    )]
    pub mail_workers: usize,

    /// How often an idle instance looks for email that no instance announced, and for
    /// email claimed by an instance that stopped (new email and due retries wake it anyway)
    #[arg(
        long,
        env = "ENROLL_MAIL_POLL_MS",
        default_value_t = 5000,
        global = true
    )]
    pub mail_poll_ms: u64,

    /// First retry delay after a temporary delivery failure; it doubles with each attempt
    #[arg(
        long,
        env = "ENROLL_MAIL_RETRY_BASE_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub mail_retry_base_seconds: u64,

    /// Longest delay between two delivery attempts
    #[arg(
        long,
        env = "ENROLL_MAIL_RETRY_MAX_SECONDS",
        default_value_t = 3600,
        global = true
    )]
    pub mail_retry_max_seconds: u64,

    /// Keep retrying a temporarily failing email for this long, then mark it "Delivery failed"
    #[arg(
        long,
        env = "ENROLL_MAIL_RETRY_HOURS",
        default_value_t = 48,
        global = true
    )]
    pub mail_retry_hours: u64,

    /// An instance that claimed an email and did not report back within this time is
    /// presumed dead; another instance then sends the email
    #[arg(
        long,
        env = "ENROLL_MAIL_LEASE_SECONDS",
        default_value_t = 120,
        global = true
    )]
    pub mail_lease_seconds: u64,

    /// Share a rendered page of the Users table between requests for the same view for
    /// this long (0: render every request). Changes made through this instance show at
    /// once; other instances' changes within this time
    #[arg(
        long,
        env = "ENROLL_USERS_PAGE_CACHE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub users_page_cache_ms: u64,

    /// Resend one user's invitation at most this often per hour (0: no limit)
    #[arg(
        long,
        env = "ENROLL_RESEND_LIMIT_PER_HOUR",
        default_value_t = 5,
        global = true
    )]
    pub resend_limit_per_hour: u32,

    /// Sign emails with DKIM for this domain (with --dkim-selector and --dkim-key-file)
    #[arg(long, env = "ENROLL_DKIM_DOMAIN", global = true)]
    pub dkim_domain: Option<String>,

    /// The DKIM selector whose public key is published in DNS
    #[arg(long, env = "ENROLL_DKIM_SELECTOR", global = true)]
    pub dkim_selector: Option<String>,

    /// The DKIM private key: RSA in PEM (PKCS#1 or PKCS#8), or Ed25519 in PKCS#8 PEM or
    /// as its 32-byte seed in base64
    #[arg(long, env = "ENROLL_DKIM_KEY_FILE", global = true)]
    pub dkim_key_file: Option<PathBuf>,

    /// Log filter, e.g. "info" or "enroll=debug,info"
    #[arg(long, env = "ENROLL_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log line format
    #[arg(
        long,
        env = "ENROLL_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Also answer GET /metrics to clients elsewhere than this machine that send
    /// "Authorization: Bearer <this token>" (at least 32 characters). Without it, only
    /// loopback clients may read the metrics
    #[arg(
        long,
        env = "ENROLL_METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<SecretString>,

    /// Take the client address from the last X-Forwarded-For entry, the one the proxy in
    /// front appends (set only behind such a proxy)
    #[arg(
        long,
        env = "ENROLL_TRUST_PROXY",
        default_value_t = false,
        global = true
    )]
    pub trust_proxy: bool,
}

impl Config {
    /// Every setting at its default, as `enroll` with no flags and no environment would have it.
    pub fn from_defaults() -> Self {
        Cli::parse_from(["enroll"]).config
    }

    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) => DatabaseUrl::parse(url.expose_secret()),
            None => Ok(DatabaseUrl::sqlite(self.data_dir.join("enroll.db"))),
        }
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.mail_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mail"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_idle_minutes) * 60)
    }

    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_max_hours) * 3600)
    }

    /// Rejects combinations that would only fail later, with a message that says what to do.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.db_pool_size >= 2,
            "ENROLL_DB_POOL_SIZE must be at least 2"
        );
        // `mail_workers` is at least 1 from flags and the environment (see
        // `at_least_one_mail_worker`). Code may set 0 to leave the background worker idle,
        // claiming no email: the integration tests do, and deliver with
        // `mail::drain::deliver_due` when they choose. The product's behaviour is unchanged.
        anyhow::ensure!(
            self.session_idle_minutes >= 1 && self.session_max_hours >= 1,
            "session timeouts must be at least one minute and one hour"
        );
        anyhow::ensure!(
            self.mail_lease_seconds > self.smtp_timeout_seconds,
            "ENROLL_MAIL_LEASE_SECONDS ({}) must be longer than ENROLL_SMTP_TIMEOUT_SECONDS ({}), \
             or a slow send would be taken over by another instance",
            self.mail_lease_seconds,
            self.smtp_timeout_seconds
        );
        if let Some(token) = &self.metrics_token {
            // A short token could be guessed from outside; the metrics tell how busy the
            // console is and how it fails.
            anyhow::ensure!(
                secrecy::ExposeSecret::expose_secret(token).len() >= 32,
                "ENROLL_METRICS_TOKEN must be at least 32 characters (try: openssl rand -hex 32)"
            );
        }
        self.database_url()?;
        Ok(())
    }
}

/// `ENROLL_MAIL_WORKERS`: an instance started from the command line always sends email.
fn at_least_one_mail_worker(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("ENROLL_MAIL_WORKERS must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
