//! Integration tests: each starts the real app on a random port with a fresh database
//! and a real SMTP server on loopback, and uses it over HTTP like a browser.

mod auth;
mod cli;
mod durability;
mod enroll_flow;
mod helpers;
mod invite_validation;
mod resend_remove;
mod settings;
