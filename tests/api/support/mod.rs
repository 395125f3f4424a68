//! Starts the real application on a random port with a fresh database and a real SMTP
//! server on loopback, and drives it over HTTP as a browser would.
//!
//! - `app`: the application under test (`spawn_app*`, `TestApp`), its database;
//! - `console`: what a test does over HTTP (open, submit, sign in, invite, act on users);
//! - `mail`: `deliver_due_emails`, sending queued email now instead of waiting for it;
//! - `page`: reading the answered pages (text, forms, field errors, redirects);
//! - `smtp`: the loopback SMTP server and the emails it received;
//! - `postgres`: the engine a test runs on, and a PostgreSQL database per test.

mod app;
mod cli;
mod console;
mod mail;
mod oidc;
mod page;
mod postgres;
mod scim;
mod smtp;
mod totp;

pub use app::*;
pub use cli::*;
pub use oidc::*;
pub use page::*;
pub use postgres::*;
pub use scim::*;
pub use smtp::*;
pub use totp::*;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const HELPDESK_EMAIL: &str = "helpdesk@example.com";
pub const HELPDESK_PASSWORD: &str = "helpful desk battery staple";
