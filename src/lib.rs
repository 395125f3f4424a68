//! Enroll: a web console in which administrators invite people by email, help-desk
//! staff resend invitations, and removed users' links stop working.

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod db;
pub mod doctor;
pub mod error;
pub mod files;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod oidc_attempts;
pub mod operations;
pub mod principal;
pub mod scim;
pub mod sessions;
pub mod settings;
pub mod shared_for_a_moment;
pub mod startup;
pub mod telemetry;
pub mod time_format;
pub mod two_factor;
pub mod users;
pub mod values;
pub mod web;
