//! The web console: one module per page, the extractors they share, and the URL map.

pub mod accounts;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod csrf;
pub mod enroll;
pub mod health;
pub mod invite;
pub mod layout;
pub mod limits;
pub mod middleware;
pub mod session;
pub mod settings;
pub mod users;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::mail::MailQueue;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub mail: MailQueue,
    pub config: Arc<Config>,
    pub readiness: health::Readiness,
    pub limits: Arc<limits::Limits>,
    /// Status counts of the unfiltered Users page.
    pub counts: Arc<crate::users::counts::CountsCache>,
    /// Rendered pages of the Users table.
    pub views: Arc<users::ViewCache>,
    /// Whether the saved public URL is https (cookies are then always Secure).
    pub public_url_is_https: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Keeps the cookie policy in step with the saved settings.
    pub fn note_public_url(&self, public_url: &str) {
        self.public_url_is_https.store(
            public_url.starts_with("https://"),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Reads the saved public URL again (it may have been changed through another
    /// instance); a failed read keeps what is known.
    pub async fn reload_public_url(&self) {
        let loaded = self
            .db
            .run(|conn| Ok(crate::settings::InvitationSettings::load(conn)?))
            .await;
        match loaded {
            Ok(Some(settings)) => self.note_public_url(&settings.public_url),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not read the invitation settings"),
        }
    }
}

/// Every route, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/setup", web::get().to(auth::setup_form))
        .route("/setup", web::post().to(auth::setup))
        .route("/users", web::get().to(users::list))
        .route("/users/invite", web::get().to(invite::form))
        .route("/users/invite", web::post().to(invite::submit))
        .route("/users/invite/import", web::post().to(invite::import))
        .route("/users/export.csv", web::get().to(users::export))
        .route("/users/resend", web::post().to(users::resend))
        .route("/users/remove", web::post().to(users::remove))
        .route("/settings/invitations", web::get().to(settings::form))
        .route("/settings/invitations", web::post().to(settings::submit))
        .route("/enroll/{token}", web::get().to(enroll::show))
        .route("/enroll/{token}", web::post().to(enroll::join))
        .route("/accounts", web::get().to(accounts::list))
        .route("/accounts", web::post().to(accounts::add))
        .route("/accounts/{id}", web::get().to(accounts::show))
        .route("/accounts/{id}/role", web::post().to(accounts::change_role))
        .route(
            "/accounts/{id}/password",
            web::post().to(accounts::reset_password),
        )
        .route("/accounts/{id}/disable", web::post().to(accounts::disable))
        .route("/accounts/{id}/enable", web::post().to(accounts::enable))
        .route("/audit", web::get().to(audit::list));
    // Routes that change things answer GET with 405, not a page.
    cfg.route(
        "/users/remove-expired",
        web::get().to(users::remove_expired_form),
    )
    .route(
        "/users/remove-expired",
        web::post().to(users::remove_expired),
    );
    for path in [
        "/logout",
        "/users/invite/import",
        "/users/resend",
        "/users/remove",
        "/accounts/{id}/role",
        "/accounts/{id}/password",
        "/accounts/{id}/disable",
        "/accounts/{id}/enable",
    ] {
        cfg.route(path, web::route().to(method_not_allowed));
    }
    // Last: every fixed /users/... path above wins over the id.
    cfg.route("/users/{id}", web::get().to(users::history));
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .content_type("text/plain; charset=utf-8")
        .body("This address only accepts form submissions (POST).")
}

async fn home() -> HttpResponse {
    see_other("/users")
}

/// Post/redirect/get: every successful change ends in one of these.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The client's address for the audit log and rate limits: the peer, or, when we are
/// told to trust the proxy in front, the address that proxy appended to
/// X-Forwarded-For. Only the last entry is the proxy's: everything before it is
/// whatever the client sent, so taking the first would let a client choose its address.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> Option<String> {
    let peer = || req.peer_addr().map(|addr| addr.ip().to_string());
    if !trust_proxy {
        return peer();
    }
    let appended_by_proxy = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .last()
        .and_then(|entry| entry.parse::<std::net::IpAddr>().ok());
    appended_by_proxy.map(|ip| ip.to_string()).or_else(peer)
}

/// Free text typed into a search or filter box, as the database can take it: control
/// characters (NUL above all, which PostgreSQL refuses in text) dropped, length capped.
pub fn plain_text(input: &str, max_chars: usize) -> String {
    input
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// An id from a URL path: a UUID, or no such thing (404).
pub fn path_id(raw: &str) -> Result<String, crate::error::AppError> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| crate::error::AppError::NotFound)
}

/// A local path to return to after sign-in; anything else (another host, `//evil`) is
/// replaced by the Users page.
pub fn safe_return_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if local { next } else { "/users" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return_path("/users?q=ada"), "/users?q=ada");
        for outside in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "users",
            "/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_return_path(outside), "/users", "{outside}");
        }
    }
}
