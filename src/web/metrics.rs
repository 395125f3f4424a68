//! `GET /metrics` for Prometheus, and who may read it.
//!
//! The metrics say how busy the console is and how it fails, so they are not public: a
//! client on this machine may read them, and so may any client that presents the
//! configured bearer token (ENROLL_METRICS_TOKEN). "On this machine" means that both the
//! connection's peer and the client address are loopback. The client address is the one
//! the audit log and rate limits use: with ENROLL_TRUST_PROXY it is the last
//! X-Forwarded-For entry, so that a reverse proxy on this machine, whose connections all
//! come from loopback, does not open the metrics to everyone behind it.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::request::{AppState, client_ip};

pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match access(&req, &state) {
        Access::Allowed => {}
        // Without a token there is nothing to present: the address does not exist.
        Access::NotFound => return plain(HttpResponse::NotFound(), "Not found."),
        Access::Forbidden => {
            return plain(
                HttpResponse::Forbidden(),
                "The metrics need Authorization: Bearer with the configured token.",
            );
        }
    }
    let mut pools = vec![("requests", state.db.pool_use())];
    if let Some(mail) = state.mail_db.get() {
        pools.push(("mail", mail.pool_use()));
    }
    match crate::metrics::scrape(&state.db, &pools, &state.clock).await {
        Ok(text) => HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .body(text),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "metrics: cannot read the database");
            plain(
                HttpResponse::ServiceUnavailable(),
                "The database cannot be read.",
            )
        }
    }
}

enum Access {
    Allowed,
    NotFound,
    Forbidden,
}

fn access(req: &HttpRequest, state: &AppState) -> Access {
    let peer_is_loopback = req.peer_addr().is_some_and(|peer| peer.ip().is_loopback());
    let client_is_loopback = client_ip(req, state.config.trust_proxy)
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    if peer_is_loopback && client_is_loopback {
        return Access::Allowed;
    }
    let Some(token) = &state.config.metrics_token else {
        return Access::NotFound;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    // Constant time, so that the token cannot be found a byte at a time.
    let matches: bool = presented
        .as_bytes()
        .ct_eq(token.expose_secret().as_bytes())
        .into();
    if matches {
        Access::Allowed
    } else {
        Access::Forbidden
    }
}

fn plain(mut response: actix_web::HttpResponseBuilder, text: &'static str) -> HttpResponse {
    response
        .content_type("text/plain; charset=utf-8")
        .body(text)
}
