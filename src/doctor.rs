//! `enroll doctor`: checks what the console needs from outside, with the configuration
//! it would start with, and says in plain words what is wrong. Exit status 0 only when
//! no check failed; a warning (DNS not reachable from here, say) does not fail.

use std::time::Duration;

use anyhow::Context;
use diesel::prelude::*;
use lettre::SmtpTransport;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::db::{self, Db, DbConnection, Engine};
use crate::settings::InvitationSettings;

/// Clocks further apart than this make leases, expiries and sessions misbehave across
/// instances: a lease is two minutes by default, retries start at 30 seconds.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Warn,
    Skip,
    Fail,
}

struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: &'static str, verdict: Verdict, detail: impl Into<String>) {
        // One line each, and no control characters: details quote servers' answers.
        let detail: String = detail.into();
        let check = Check {
            name,
            verdict,
            detail: detail
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
        };
        let mark = match check.verdict {
            Verdict::Pass => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Skip => "skip",
            Verdict::Fail => "FAIL",
        };
        // Printed as each check ends, so a slow one shows where it is.
        println!("{mark}  {}: {}", check.name, check.detail);
        self.checks.push(check);
    }

    fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.name)
            .collect()
    }
}

pub fn run(config: &Config) -> anyhow::Result<()> {
    let mut report = Report::default();
    let mut db = check_database(config, &mut report);
    check_mail_server(config, &mut report);
    check_public_url(db.as_mut(), &mut report);
    check_clock(db.as_mut(), &mut report);
    check_dkim(config, &mut report);
    let failed = report.failed();
    anyhow::ensure!(
        failed.is_empty(),
        "{} check(s) failed: {}",
        failed.len(),
        failed.join(", ")
    );
    println!("Every check passed.");
    Ok(())
}

/// Connects and checks the migrations; the database for the later checks when usable.
fn check_database(config: &Config, report: &mut Report) -> Option<DbConnection> {
    const NAME: &str = "database";
    let url = match config.database_url() {
        Ok(url) => url,
        Err(error) => {
            report.add(NAME, Verdict::Fail, format!("{error:#}"));
            return None;
        }
    };
    // Connecting would create an empty SQLite file; the doctor changes nothing.
    if let Some(path) = url.sqlite_path()
        && !path.is_file()
    {
        report.add(
            NAME,
            Verdict::Fail,
            format!(
                "there is no database at {}: start the console or run `enroll migrate` to \
                 create it (or set ENROLL_DATABASE_URL / ENROLL_DATA_DIR to where it is)",
                path.display()
            ),
        );
        return None;
    }
    let mut db = match Db::connect_once(&url) {
        Ok(db) => db,
        Err(error) => {
            report.add(NAME, Verdict::Fail, format!("{error:#}"));
            return None;
        }
    };
    let pending = db::has_pending_migrations(&mut db);
    match pending {
        Ok(false) => {
            report.add(
                NAME,
                Verdict::Pass,
                format!("{} answers, every migration applied", url.redacted()),
            );
            Some(db)
        }
        Ok(true) => {
            report.add(
                NAME,
                Verdict::Fail,
                format!(
                    "{} answers, but migrations are not applied yet: run `enroll migrate` \
                     (starting the console applies them too)",
                    url.redacted()
                ),
            );
            None
        }
        Err(error) => {
            report.add(NAME, Verdict::Fail, format!("{error:#}"));
            None
        }
    }
}

fn check_mail_server(config: &Config, report: &mut Report) {
    const NAME: &str = "mail server";
    let Some(url) = &config.smtp_url else {
        report.add(
            NAME,
            Verdict::Pass,
            format!(
                "no SMTP server configured (ENROLL_SMTP_URL): email is written as .eml files \
                 to {}",
                config.mail_dir().display()
            ),
        );
        return;
    };
    let target = smtp_target(url);
    let timeout = Duration::from_secs(config.smtp_timeout_seconds);
    let transport = match SmtpTransport::from_url(url.expose_secret()) {
        Ok(builder) => builder.timeout(Some(timeout)).build(),
        Err(_) => {
            // lettre's error does not echo the URL; neither do we (it may hold a password).
            report.add(
                NAME,
                Verdict::Fail,
                "ENROLL_SMTP_URL is not a valid smtp:// or smtps:// URL",
            );
            return;
        }
    };
    // Connects, says EHLO, starts TLS when the URL asks for it, and signs in when it
    // carries credentials: what each send does first.
    match transport.test_connection() {
        Ok(true) => report.add(
            NAME,
            Verdict::Pass,
            format!("{target} accepted the connection{}", tls_and_auth(url)),
        ),
        Ok(false) => report.add(
            NAME,
            Verdict::Fail,
            format!("{target} connected but did not answer as a mail server"),
        ),
        Err(error) => report.add(
            NAME,
            Verdict::Fail,
            format!(
                "cannot use the mail server at {target}: {}",
                crate::mail::transport::smtp_reason(&error)
            ),
        ),
    }
}

/// Host and port of the SMTP URL, without user or password.
fn smtp_target(url: &SecretString) -> String {
    match url::Url::parse(url.expose_secret()) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("?");
            match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => format!("{host} (default port for {})", parsed.scheme()),
            }
        }
        Err(_) => "the configured server".to_owned(),
    }
}

fn tls_and_auth(url: &SecretString) -> String {
    let Ok(parsed) = url::Url::parse(url.expose_secret()) else {
        return String::new();
    };
    let mut done = Vec::new();
    let tls = parsed
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    if parsed.scheme() == "smtps" {
        done.push("over TLS");
    } else if tls.as_deref() == Some("required") || tls.as_deref() == Some("opportunistic") {
        done.push("STARTTLS");
    }
    if !parsed.username().is_empty() {
        done.push("signed in");
    }
    if done.is_empty() {
        String::new()
    } else {
        format!(" ({})", done.join(", "))
    }
}

fn check_public_url(db: Option<&mut DbConnection>, report: &mut Report) {
    const NAME: &str = "public URL";
    let Some(db) = db else {
        report.add(NAME, Verdict::Skip, "needs the database");
        return;
    };
    let settings = InvitationSettings::load(db);
    let public_url = match settings {
        Ok(Some(settings)) => settings.public_url,
        Ok(None) => {
            report.add(
                NAME,
                Verdict::Skip,
                "invitation settings are not saved yet (an administrator does that on \
                 /settings/invitations)",
            );
            return;
        }
        Err(error) => {
            report.add(
                NAME,
                Verdict::Fail,
                format!("cannot read the settings: {error:#}"),
            );
            return;
        }
    };
    let (verdict, detail) = judge_public_url(&public_url);
    report.add(NAME, verdict, detail);
}

fn judge_public_url(public_url: &str) -> (Verdict, String) {
    let parsed = match url::Url::parse(public_url) {
        Ok(parsed) => parsed,
        Err(error) => {
            return (
                Verdict::Fail,
                format!("{public_url} is not a URL ({error}): fix it on /settings/invitations"),
            );
        }
    };
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => (Verdict::Pass, format!("{public_url} (https)")),
        "http" if loopback => (
            Verdict::Pass,
            format!("{public_url} (http, but only this machine can follow its links)"),
        ),
        "http" => (
            Verdict::Fail,
            format!(
                "{public_url} is plain http: enrollment links, which let anyone join, would \
                 travel in clear text. Serve the console over https and save the https URL \
                 on /settings/invitations"
            ),
        ),
        scheme => (
            Verdict::Fail,
            format!("{public_url} uses {scheme}:, not https: fix it on /settings/invitations"),
        ),
    }
}

fn check_clock(db: Option<&mut DbConnection>, report: &mut Report) {
    const NAME: &str = "clock";
    let Some(db) = db else {
        report.add(NAME, Verdict::Skip, "needs the database");
        return;
    };
    if db::engine_of(db) == Engine::Sqlite {
        report.add(
            NAME,
            Verdict::Skip,
            "SQLite: the database is a file on this machine, whose clock is the only one",
        );
        return;
    }
    match clock_skew(db) {
        Ok(skew) if skew.abs() <= MAX_CLOCK_SKEW.as_secs_f64() => report.add(
            NAME,
            Verdict::Pass,
            format!("within {:.3} s of the database server's", skew.abs()),
        ),
        Ok(skew) => report.add(
            NAME,
            Verdict::Fail,
            format!(
                "this machine's clock is {:.1} s {} the database server's: set up time \
                 synchronisation (NTP) on both; expiries, retries and leases between \
                 instances depend on it",
                skew.abs(),
                if skew > 0.0 { "ahead of" } else { "behind" }
            ),
        ),
        Err(error) => report.add(
            NAME,
            Verdict::Fail,
            format!("cannot read the database server's clock: {error:#}"),
        ),
    }
}

/// Seconds this machine's clock is ahead of the database server's, measured at the
/// middle of the round trip.
fn clock_skew(conn: &mut DbConnection) -> anyhow::Result<f64> {
    #[derive(QueryableByName)]
    struct Epoch {
        #[diesel(sql_type = diesel::sql_types::Double)]
        epoch: f64,
    }
    let DbConnection::Postgresql(pg) = conn else {
        anyhow::bail!("not PostgreSQL");
    };
    let local = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default()
    };
    let before = local();
    let server = diesel::sql_query(
        "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) AS epoch",
    )
    .get_result::<Epoch>(pg)?
    .epoch;
    let after = local();
    Ok((before + after) / 2.0 - server)
}

fn check_dkim(config: &Config, report: &mut Report) {
    const NAME: &str = "DKIM";
    let (domain, selector, key_file) = match (
        &config.dkim_domain,
        &config.dkim_selector,
        &config.dkim_key_file,
    ) {
        (None, None, None) => {
            report.add(NAME, Verdict::Skip, "not configured (ENROLL_DKIM_DOMAIN)");
            return;
        }
        (Some(domain), Some(selector), Some(key_file)) => (domain, selector, key_file),
        _ => {
            report.add(
                NAME,
                Verdict::Fail,
                "DKIM needs all three of ENROLL_DKIM_DOMAIN, ENROLL_DKIM_SELECTOR and \
                 ENROLL_DKIM_KEY_FILE",
            );
            return;
        }
    };
    let record = match crate::mail::dkim_txt_record(key_file) {
        Ok(record) => record,
        Err(error) => {
            report.add(
                NAME,
                Verdict::Fail,
                format!("cannot read the key {}: {error:#}", key_file.display()),
            );
            return;
        }
    };
    let name = crate::mail::txt_record_name(domain, selector);
    println!("      publish this TXT record:\n      {name}. IN TXT \"{record}\"");
    if is_reserved_domain(domain) {
        report.add(
            NAME,
            Verdict::Warn,
            format!("{domain} is a reserved name that no DNS publishes: not looked up"),
        );
        return;
    }
    let (verdict, detail) = match published_dkim_record(&name) {
        Ok(published) if published.iter().any(|p| same_record(p, &record)) => (
            Verdict::Pass,
            format!("{name} publishes the key in {}", key_file.display()),
        ),
        Ok(published) if published.is_empty() => (
            Verdict::Fail,
            format!(
                "{name} has no TXT record: publish the one above, or receivers will not \
                 trust the signature"
            ),
        ),
        Ok(_) => (
            Verdict::Fail,
            format!(
                "{name} publishes another key than {}: publish the record above (or point \
                 ENROLL_DKIM_KEY_FILE at the key that matches)",
                key_file.display()
            ),
        ),
        Err(error) => (
            Verdict::Warn,
            format!(
                "could not ask DNS from here, so the published record is not checked: {error:#}"
            ),
        ),
    };
    report.add(NAME, verdict, detail);
}

/// Names that DNS never resolves (RFC 2606, RFC 6761): asking would only wait.
fn is_reserved_domain(domain: &str) -> bool {
    let last = domain
        .trim_end_matches('.')
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(last.as_str(), "invalid" | "test" | "example" | "localhost")
}

/// Records compared without the spaces DNS tools and people add between tags.
fn same_record(published: &str, expected: &str) -> bool {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squeeze(published) == squeeze(expected)
}

/// The TXT records at `name` (each one's strings joined), empty when there are none;
/// an error when DNS cannot be asked.
fn published_dkim_record(name: &str) -> anyhow::Result<Vec<String>> {
    use hickory_resolver::TokioResolver;
    use hickory_resolver::proto::rr::RData;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut builder =
            TokioResolver::builder_tokio().context("cannot read the system's DNS settings")?;
        builder.options_mut().timeout = Duration::from_secs(3);
        builder.options_mut().attempts = 1;
        let resolver = builder.build().context("cannot set up DNS")?;
        let lookup = match resolver.txt_lookup(format!("{name}.")).await {
            Ok(lookup) => lookup,
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => {
                return Ok(Vec::new());
            }
            Err(error) => return Err(anyhow::Error::from(error)),
        };
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_judged_by_scheme_and_host() {
        for (url, verdict) in [
            ("https://enroll.example.com", Verdict::Pass),
            ("http://127.0.0.1:8080", Verdict::Pass),
            ("http://localhost:8080", Verdict::Pass),
            ("http://[::1]:8080", Verdict::Pass),
            ("http://enroll.example.com", Verdict::Fail),
            ("ftp://enroll.example.com", Verdict::Fail),
            ("not a url", Verdict::Fail),
        ] {
            assert_eq!(judge_public_url(url).0, verdict, "{url}");
        }
    }

    #[test]
    fn dkim_records_compare_without_spaces() {
        assert!(same_record(
            "v=DKIM1;k=rsa; p=AB CD",
            "v=DKIM1; k=rsa; p=ABCD"
        ));
        assert!(!same_record(
            "v=DKIM1; k=rsa; p=ABCE",
            "v=DKIM1; k=rsa; p=ABCD"
        ));
    }
}
