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
                  (or ENROLL_RESTORE_FROM) copy the SQLite database; back up PostgreSQL with pg_dump.\n\
                  `enroll token add --kind scim --name NAME` prints `token=<secret>`; `enroll token add \
                  --kind access-key --name NAME --role administrator|helpdesk` prints `access_key_id=<id>` \
                  and `secret_access_key=<secret>` (or ENROLL_TOKEN_KIND, ENROLL_TOKEN_NAME, \
                  ENROLL_TOKEN_ROLE). The secret is shown once."
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
    /// Manage machine credentials (SCIM tokens, access keys) from a script
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a credential and print its secret (shown this once): `token=<secret>` for
    /// SCIM, `access_key_id=<id>` and `secret_access_key=<secret>` for an access key
    Add {
        /// scim: a bearer token for /scim/v2 (acts as an administrator);
        /// access-key: an id and secret that sign requests to the API
        #[arg(long, env = "ENROLL_TOKEN_KIND", value_enum)]
        kind: TokenKind,
        /// How the audit log and the API access page name it ("Okta")
        #[arg(long, env = "ENROLL_TOKEN_NAME")]
        name: String,
        /// What an access key may do (required for access keys; SCIM tokens are
        /// administrators)
        #[arg(long, env = "ENROLL_TOKEN_ROLE", value_enum)]
        role: Option<Role>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenKind {
    Scim,
    AccessKey,
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

    /// Share a rendered page of the Users table between requests for the same view, and
    /// a page of the API's SearchUsers between identical requests, for this long (0:
    /// render or search every request). Changes made through this instance show at
    /// once; other instances' changes within this time
    #[arg(
        long,
        env = "ENROLL_USERS_PAGE_CACHE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub users_page_cache_ms: u64,

    /// Cut a page's database read short after this many milliseconds (a search, a filter,
    /// an export batch, a user's history): the page then says the search took too long
    /// (503). PostgreSQL: statement_timeout per read transaction; SQLite: checked as the
    /// statement runs
    #[arg(
        long,
        env = "ENROLL_READ_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub read_timeout_ms: u64,

    /// The same for every other statement, writes included (0: none). Migrations have none
    #[arg(
        long,
        env = "ENROLL_WRITE_TIMEOUT_MS",
        default_value_t = 30000,
        global = true
    )]
    pub write_timeout_ms: u64,

    /// Expensive reads (searches, filters, exports, user histories) running at once per
    /// instance; more are refused at once with 503 and Retry-After. Default: the pool size
    /// less 3 (half of a small pool), so that sign-in, sessions, enrollment, resend and
    /// health checks always find a connection
    #[arg(long, env = "ENROLL_EXPENSIVE_READS", global = true)]
    pub expensive_reads: Option<u32>,

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

    /// Single sign-on: the OpenID provider's issuer URL (discovery is read from
    /// <issuer>/.well-known/openid-configuration). Register <public URL>/login/oidc/callback
    /// as the redirect URI
    #[arg(long, env = "ENROLL_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,

    /// Single sign-on: the client id registered at the provider
    #[arg(long, env = "ENROLL_OIDC_CLIENT_ID", global = true)]
    pub oidc_client_id: Option<String>,

    /// Single sign-on: the client secret registered at the provider
    #[arg(
        long,
        env = "ENROLL_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub oidc_client_secret: Option<SecretString>,

    /// Single sign-on: the provider's name on the sign-in button ("Sign in with <name>")
    #[arg(long, env = "ENROLL_OIDC_NAME", default_value = "SSO", global = true)]
    pub oidc_name: String,

    /// Single sign-on: scopes asked for besides "openid" (space-separated)
    #[arg(
        long,
        env = "ENROLL_OIDC_SCOPES",
        default_value = "email profile",
        global = true
    )]
    pub oidc_scopes: String,

    /// Single sign-on: the claim listing the person's groups (ID token or UserInfo)
    #[arg(
        long,
        env = "ENROLL_OIDC_GROUPS_CLAIM",
        default_value = "groups",
        global = true
    )]
    pub oidc_groups_claim: String,

    /// Single sign-on: members of these groups (comma-separated) sign in as administrators;
    /// without a console account, one is created at their first sign-in
    #[arg(
        long,
        env = "ENROLL_OIDC_ADMIN_GROUPS",
        value_delimiter = ',',
        global = true
    )]
    pub oidc_admin_groups: Vec<String>,

    /// Single sign-on: members of these groups (comma-separated) get a help-desk account
    /// at their first sign-in
    #[arg(
        long,
        env = "ENROLL_OIDC_HELPDESK_GROUPS",
        value_delimiter = ',',
        global = true
    )]
    pub oidc_helpdesk_groups: Vec<String>,

    /// Single sign-on is the only way in: password sign-in is refused, except for the
    /// administrators named in ENROLL_OIDC_BREAK_GLASS
    #[arg(long, env = "ENROLL_OIDC_ONLY", default_value_t = false, global = true)]
    pub oidc_only: bool,

    /// Administrators (email addresses, comma-separated) who may still sign in with their
    /// password when ENROLL_OIDC_ONLY is set, for when the provider is down
    #[arg(
        long,
        env = "ENROLL_OIDC_BREAK_GLASS",
        value_delimiter = ',',
        global = true
    )]
    pub oidc_break_glass: Vec<String>,
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

    /// Deadlines and the admission of expensive reads.
    pub fn query_limits(&self) -> crate::db::QueryLimits {
        let expensive = self
            .expensive_reads
            .unwrap_or(
                self.db_pool_size
                    .saturating_sub(3)
                    .max(self.db_pool_size / 2),
            )
            .clamp(1, self.db_pool_size.saturating_sub(1).max(1));
        crate::db::QueryLimits::new(
            Duration::from_millis(self.read_timeout_ms),
            Duration::from_millis(self.write_timeout_ms),
            expensive as usize,
        )
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
        anyhow::ensure!(
            self.read_timeout_ms >= 1,
            "ENROLL_READ_TIMEOUT_MS must be at least 1"
        );
        anyhow::ensure!(
            self.expensive_reads != Some(0),
            "ENROLL_EXPENSIVE_READS must be at least 1"
        );
        self.database_url()?;
        self.oidc_settings()?;
        Ok(())
    }

    /// Single sign-on, when configured; an error names what is missing.
    pub fn oidc_settings(&self) -> anyhow::Result<Option<crate::oidc::OidcSettings>> {
        let list = |items: &[String]| -> Vec<String> {
            items
                .iter()
                .map(|i| i.trim().to_owned())
                .filter(|i| !i.is_empty())
                .collect()
        };
        let Some(issuer) = self.oidc_issuer.as_deref().filter(|i| !i.trim().is_empty()) else {
            anyhow::ensure!(
                self.oidc_client_id.is_none() && !self.oidc_only,
                "ENROLL_OIDC_CLIENT_ID or ENROLL_OIDC_ONLY is set without ENROLL_OIDC_ISSUER"
            );
            return Ok(None);
        };
        let client_id = self
            .oidc_client_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow::anyhow!("ENROLL_OIDC_ISSUER needs ENROLL_OIDC_CLIENT_ID"))?;
        let client_secret = self
            .oidc_client_secret
            .clone()
            .filter(|c| !c.expose_secret().is_empty())
            .ok_or_else(|| anyhow::anyhow!("ENROLL_OIDC_ISSUER needs ENROLL_OIDC_CLIENT_SECRET"))?;
        let url = url::Url::parse(issuer.trim())
            .map_err(|e| anyhow::anyhow!("ENROLL_OIDC_ISSUER is not a URL: {e}"))?;
        anyhow::ensure!(
            url.scheme() == "https" || url.host_str().is_some_and(is_loopback_host),
            "ENROLL_OIDC_ISSUER must be an https:// URL (plain http only on loopback, for tests)"
        );
        let name = self.oidc_name.trim();
        anyhow::ensure!(
            !name.is_empty() && name.chars().count() <= 60,
            "ENROLL_OIDC_NAME must be 1 to 60 characters"
        );
        Ok(Some(crate::oidc::OidcSettings {
            // As configured: the ID token's `iss` must be exactly this.
            issuer: issuer.trim().to_owned(),
            client_id,
            client_secret,
            name: name.to_owned(),
            scopes: self
                .oidc_scopes
                .split([' ', ','])
                .filter(|s| !s.is_empty() && *s != "openid")
                .map(str::to_owned)
                .collect(),
            groups_claim: self.oidc_groups_claim.trim().to_owned(),
            administrator_groups: list(&self.oidc_admin_groups),
            helpdesk_groups: list(&self.oidc_helpdesk_groups),
            only: self.oidc_only,
            break_glass: list(&self.oidc_break_glass)
                .iter()
                .map(|e| crate::accounts::email_key(e))
                .collect(),
        }))
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `ENROLL_MAIL_WORKERS`: an instance started from the command line always sends email.
fn at_least_one_mail_worker(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("ENROLL_MAIL_WORKERS must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(args: &[&str]) -> Config {
        let mut all = vec!["enroll"];
        all.extend_from_slice(args);
        Cli::parse_from(all).config
    }

    #[test]
    fn single_sign_on_needs_a_whole_client_and_an_https_issuer() {
        assert!(with(&[]).oidc_settings().unwrap().is_none());
        let refused = [
            vec!["--oidc-issuer", "https://id.example.com"],
            vec![
                "--oidc-issuer",
                "https://id.example.com",
                "--oidc-client-id",
                "c",
            ],
            vec!["--oidc-client-id", "c"],
            vec!["--oidc-only"],
            vec![
                "--oidc-issuer",
                "http://id.example.com",
                "--oidc-client-id",
                "c",
                "--oidc-client-secret",
                "s",
            ],
        ];
        for args in refused {
            assert!(with(&args).validate().is_err(), "{args:?}");
        }
        let settings = with(&[
            "--oidc-issuer",
            "https://id.example.com/realms/staff",
            "--oidc-client-id",
            "enroll",
            "--oidc-client-secret",
            "s3cret",
            "--oidc-scopes",
            "openid email groups",
            "--oidc-admin-groups",
            "it-admins, security",
            "--oidc-break-glass",
            " Root@Example.com ",
        ])
        .oidc_settings()
        .unwrap()
        .unwrap();
        assert_eq!(settings.scopes, ["email", "groups"]);
        assert_eq!(settings.administrator_groups, ["it-admins", "security"]);
        assert_eq!(settings.break_glass, ["root@example.com"]);
        assert_eq!(settings.name, "SSO");
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
