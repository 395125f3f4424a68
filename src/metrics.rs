//! What `GET /metrics` reports, kept per running application (tests run many in one
//! process) and shared by every pool of its database through `Db::metrics`.
//!
//! Counters and histograms live here and grow as things happen; what is a state rather
//! than an event (outbox depth, the oldest waiting email, pool use) is read from the
//! database and the pools at each scrape ([`scrape`]), so that it cannot drift. The text
//! is written by `prometheus-client` (OpenMetrics, which Prometheus reads).

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::clock::Clock;
use crate::db::Db;

/// The media type of the text [`scrape`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request latency buckets, in seconds: pages take milliseconds, an invitation of
/// 1,000 rows a few seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The matched route pattern (`/enroll/{token}`), never the path: paths carry tokens,
    /// and would make a series per user.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnsweredLabels {
    by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sqlite_busy: Counter,
    mail_outcome_record_failures: Counter,
    emails_sent: Counter,
    emails_deferred: Counter,
    emails_failed: Counter,
    sign_in_failures: Counter,
    rate_limit_refusals: Family<LimitLabels, Counter>,
    query_limit_trips: Family<LimitLabels, Counter>,
    users_searches: Family<AnsweredLabels, Counter>,
    http_requests: Family<RequestLabels, Counter>,
    http_latency: LatencyFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("enroll");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let sqlite_busy = counter(
            &mut registry,
            "sqlite_busy",
            "Statements that met SQLite's lock and gave up after the busy timeout; a steady \
             rise means writers hold the lock too long",
        );
        let mail_outcome_record_failures = counter(
            &mut registry,
            "mail_outcome_record_failures",
            "Tries at recording an email's outcome that the database refused (each is retried)",
        );
        let emails_sent = counter(
            &mut registry,
            "emails_sent",
            "Emails the mail server accepted",
        );
        let emails_deferred = counter(
            &mut registry,
            "emails_deferred",
            "Delivery attempts that failed for now and will be retried",
        );
        let emails_failed = counter(
            &mut registry,
            "emails_failed",
            "Emails given up on: refused for good, or retried past the horizon",
        );
        let sign_in_failures = counter(
            &mut registry,
            "sign_in_failures",
            "Sign-in attempts with a wrong address or password, or for a disabled account",
        );
        let rate_limit_refusals = Family::default();
        registry.register(
            "rate_limit_refusals",
            "Requests refused with 429 by a rate limit, by limit",
            rate_limit_refusals.clone(),
        );
        let query_limit_trips = Family::default();
        registry.register(
            "query_limit_trips",
            "Database work cut short or refused by a limit: `read_deadline` and \
             `write_deadline` (a statement ran past its time), `admission` (every slot for \
             expensive reads was taken: 503 at once)",
            query_limit_trips.clone(),
        );
        let users_searches = Family::default();
        registry.register(
            "users_searches",
            "Searches of the Users page, by what answered them: `index` (this instance's \
             search index) or `database` (a tag search, or the index not built yet)",
            users_searches.clone(),
        );
        let http_requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            http_requests.clone(),
        );
        let http_latency: LatencyFamily =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response, by method and route pattern",
            Unit::Seconds,
            http_latency.clone(),
        );
        Self {
            registry,
            sqlite_busy,
            mail_outcome_record_failures,
            emails_sent,
            emails_deferred,
            emails_failed,
            sign_in_failures,
            rate_limit_refusals,
            query_limit_trips,
            users_searches,
            http_requests,
            http_latency,
        }
    }
}

impl Metrics {
    /// `enroll_sqlite_busy_total`.
    pub fn sqlite_busy_total(&self) -> u64 {
        self.sqlite_busy.get()
    }

    /// `enroll_mail_outcome_record_failures_total`.
    pub fn mail_outcome_record_failures_total(&self) -> u64 {
        self.mail_outcome_record_failures.get()
    }

    pub(crate) fn count_sqlite_busy(&self) -> u64 {
        self.sqlite_busy.inc() + 1
    }

    pub(crate) fn count_mail_outcome_record_failure(&self) -> u64 {
        self.mail_outcome_record_failures.inc() + 1
    }

    pub(crate) fn count_email_sent(&self) {
        self.emails_sent.inc();
    }

    pub(crate) fn count_email_deferred(&self) {
        self.emails_deferred.inc();
    }

    pub(crate) fn count_email_failed(&self) {
        self.emails_failed.inc();
    }

    pub fn count_sign_in_failure(&self) {
        self.sign_in_failures.inc();
    }

    /// `limit` names the limit that refused (a fixed set, see `web::limits`).
    pub fn count_rate_limit_refusal(&self, limit: &'static str) {
        self.rate_limit_refusals
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// A search of the Users page was answered `by` "index" or "database".
    pub fn count_users_search(&self, by: &'static str) {
        self.users_searches
            .get_or_create(&AnsweredLabels { by })
            .inc();
    }

    /// A deadline or the admission of expensive reads tripped (`read_deadline`,
    /// `write_deadline`, `admission`); returns the new total for the log line.
    pub fn count_query_limit_trip(&self, limit: &'static str) -> u64 {
        self.query_limit_trips
            .get_or_create(&LimitLabels { limit })
            .inc()
            + 1
    }

    /// How often `limit` tripped so far (see [`Metrics::count_query_limit_trip`]).
    pub fn query_limit_trips(&self, limit: &'static str) -> u64 {
        self.query_limit_trips
            .get_or_create(&LimitLabels { limit })
            .get()
    }

    /// One answered request. `route` must be a route pattern or a fixed word.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = known_method(method);
        self.http_requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_latency
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

/// HTTP allows any token as a method: unknown ones share one label, so that a client
/// cannot add series at will.
fn known_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// How many connections a pool has open and how many of them are lent out.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// Every outbox state, so that each is reported even while it counts zero.
const OUTBOX_STATES: [&str; 5] = {
    use crate::mail::outbox::status::*;
    [QUEUED, SENDING, SENT, FAILED, CANCELLED]
};

/// The outbox as it is now.
struct OutboxNow {
    by_state: Vec<(String, i64)>,
    oldest_waiting: Option<NaiveDateTime>,
}

fn read_outbox(conn: &mut crate::db::DbConnection) -> QueryResult<OutboxNow> {
    use crate::db::schema::outbound_emails::dsl::*;
    use crate::mail::outbox::status;
    let by_state = outbound_emails
        .group_by(status)
        .select((status, diesel::dsl::count_star()))
        .load::<(String, i64)>(conn)?;
    // Queued includes emails waiting for a retry; sending, those claimed but not settled.
    let oldest_waiting = outbound_emails
        .filter(status.eq_any([status::QUEUED, status::SENDING]))
        .select(diesel::dsl::min(created_at))
        .first::<Option<NaiveDateTime>>(conn)?;
    Ok(OutboxNow {
        by_state,
        oldest_waiting,
    })
}

/// The metrics text: this application's counters, then what the database and the pools
/// say now. `pools` names each pool of the application.
pub async fn scrape(
    db: &Db,
    pools: &[(&'static str, PoolUse)],
    clock: &Clock,
) -> anyhow::Result<String> {
    let outbox = db
        .read(|conn| read_outbox(conn).map_err(crate::db::DbError::from))
        .await?;
    let mut now = Registry::with_prefix("enroll");
    let depth = Family::<StateLabels, Gauge>::default();
    now.register(
        "outbox_emails",
        "Emails in the outbox, by state (queued includes those waiting for a retry)",
        depth.clone(),
    );
    for state in OUTBOX_STATES {
        let count = outbox
            .by_state
            .iter()
            .find(|(name, _)| name == state)
            .map_or(0, |(_, count)| *count);
        depth.get_or_create(&StateLabels { state }).set(count);
    }
    let oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    now.register_with_unit(
        "outbox_oldest_waiting_email_age",
        "Age of the oldest email not yet sent nor given up on (0 when none waits)",
        Unit::Seconds,
        oldest.clone(),
    );
    if let Some(created) = outbox.oldest_waiting {
        let age = (clock.now() - created).num_milliseconds().max(0);
        // Milliseconds as f64: exact well past any age an email can reach.
        oldest.set(age as f64 / 1000.0);
    }
    let connections = Family::<PoolLabels, Gauge>::default();
    now.register(
        "db_pool_connections",
        "Database connections of each pool: in use, idle, and the most it may open",
        connections.clone(),
    );
    for &(pool, usage) in pools {
        let set = |state, value: u32| {
            connections
                .get_or_create(&PoolLabels { pool, state })
                .set(i64::from(value));
        };
        set("in_use", usage.open.saturating_sub(usage.idle));
        set("idle", usage.idle);
        set("max", usage.max);
    }
    let mut text = String::new();
    encode_registry(&mut text, &db.metrics().registry)?;
    encode_registry(&mut text, &now)?;
    encode_eof(&mut text)?;
    Ok(text)
}

/// Whether SQLite gave up waiting for a lock (SQLITE_BUSY, or SQLITE_LOCKED between
/// connections sharing a cache). diesel reports both as an unknown database error, so
/// only SQLite's own message tells them apart.
pub fn is_sqlite_busy(error: &diesel::result::Error) -> bool {
    match error {
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("database is locked")
                || message.contains("database table is locked")
                || message.contains("database schema is locked")
        }
        _ => false,
    }
}
