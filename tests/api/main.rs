//! Integration tests: each starts the real app on a random port with a fresh database
//! and a real SMTP server on loopback, and uses it over HTTP like a browser.

/// Defines each test twice, as `<name>::sqlite` and `<name>::postgres`; the PostgreSQL
/// one says it skipped when no server is configured.
macro_rules! on_both_engines {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            #[tokio::test]
            async fn sqlite() {
                $crate::helpers::run_on($crate::helpers::Engine::Sqlite, body()).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::helpers::run_on($crate::helpers::Engine::Postgres, body()).await;
            }
        }
    };
}

mod accounts;
mod adversarial;
mod auth;
mod browser;
mod cli;
mod csv_import_export;
mod delivery;
mod dkim;
mod durability;
mod enroll_flow;
mod helpers;
mod instances;
mod invite_validation;
mod resend_remove;
mod scale_out;
mod settings;
mod smtp_faults;
mod users_page;
