//! Integration tests: each starts the real app on a random port with a fresh database
//! and a real SMTP server on loopback, and uses it over HTTP like a browser.
//!
//! A test that needs what this machine lacks is *ignored*, with its reason, so that the
//! closing counts say what did not run: build.rs sets `enroll_test_postgres` when
//! `ENROLL_TEST_POSTGRES_URL` is set, and `enroll_test_browser` when Chromium,
//! chromedriver and axe-core are there (Cargo rebuilds when those change). Such a
//! test forced to run anyway (`-- --include-ignored`) fails, saying what it misses.

/// Defines each test twice, as `<name>::sqlite` and `<name>::postgres`; the PostgreSQL
/// one is ignored when no server is configured. `#[needs(cfg, "reason")]` first names
/// one more thing from outside Cargo (a `build.rs` cfg): without it both are ignored,
/// with the reason.
macro_rules! on_both_engines {
    (async fn $name:ident() $body:block) => {
        on_both_engines! { #[needs(all(), "")] async fn $name() $body }
    };
    (#[needs($needs:meta, $why:literal)] async fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            #[tokio::test]
            #[cfg_attr(not($needs), ignore = $why)]
            async fn sqlite() {
                $crate::support::run_on($crate::support::Engine::Sqlite, body()).await;
            }

            #[tokio::test]
            #[cfg_attr(not($needs), ignore = $why)]
            #[cfg_attr(all($needs, not(enroll_test_postgres)), ignore = "needs PostgreSQL: set ENROLL_TEST_POSTGRES_URL")]
            async fn postgres() {
                $crate::support::run_on($crate::support::Engine::Postgres, body()).await;
            }
        }
    };
}

mod a4b;
mod abuse;
mod accounts;
mod adversarial;
mod assets;
mod auth;
mod browser;
mod cli;
mod credentials;
mod csv_import_export;
mod delivery;
mod dkim;
mod durability;
mod enroll_flow;
mod exactly_once;
mod failover;
mod hostile_input;
mod instances;
mod invite_validation;
mod metrics;
mod operator;
mod plans;
mod query_limits;
mod reminders;
mod resend_remove;
mod review;
mod scale_out;
mod scim;
mod scim_clients;
mod scim_conformance;
mod search_index;
mod session_attacks;
mod settings;
mod single_sign_on;
mod smtp_faults;
mod support;
mod two_factor;
mod users_page;
