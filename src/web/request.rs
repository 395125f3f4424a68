//! What every handler shares: the application state, the client's address, redirects,
//! and the checks on what a URL or a form may carry.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::error::AppError;
use super::health::Readiness;
use super::limits::Limits;
use super::users::ViewCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::operations::Operations;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The domain's operations: every change and every read of the pages.
    pub ops: Operations,
    /// For the health check and the session store.
    pub db: Db,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub readiness: Readiness,
    pub limits: Arc<Limits>,
    /// Rendered pages of the Users table.
    pub views: Arc<ViewCache>,
    /// Whether the saved public URL is https (cookies are then always Secure).
    pub public_url_is_https: Arc<std::sync::atomic::AtomicBool>,
    /// The mail worker's own pool, for `GET /metrics`; set once the worker starts.
    pub mail_db: Arc<std::sync::OnceLock<Db>>,
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
        match self.ops.invitation_settings().await {
            Ok(Some(settings)) => self.note_public_url(&settings.public_url),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not read the invitation settings"),
        }
    }
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
pub fn path_id(raw: &str) -> Result<String, AppError> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| AppError::NotFound)
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
