//! Cross-cutting response rules: security headers, request logging without secrets,
//! and a 503 while the instance is not ready.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, Next};
use std::sync::atomic::Ordering;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{Error, HttpMessage, HttpResponse, web};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use super::request::AppState;

/// No inline script anywhere; forms post only here; nobody may frame the console.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The settings page with an email preview: the same, plus the inline styles of the
/// email shown in a sandboxed frame (style only; script stays 'self').
pub const PREVIEW_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every response gets unless the handler set its own. Pages are not cached
/// (they hold personal data), and no page sends a Referer: enrollment URLs carry tokens.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cache-Control", "no-store"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ))
}

/// Until migrations are done, everything but the probes answers 503.
pub async fn ready_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    let ready = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.readiness.is_ready());
    if ready {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let response = HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "2"))
        .content_type("text/plain; charset=utf-8")
        .body("Enroll is starting: database migrations are running. Try again in a moment.");
    Ok(req.into_response(response).map_into_right_body())
}

/// Marks every cookie Secure when the console is reached over HTTPS: the request came
/// in over TLS (or a proxy says so), or the configured public URL is https.
pub async fn secure_cookies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let secure = req.connection_info().scheme() == "https"
        || req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|state| state.public_url_is_https.load(Ordering::Relaxed));
    let mut response = next.call(req).await?;
    if secure {
        let headers = response.headers_mut();
        let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or_default();
            let value = if text.is_empty() || text.to_ascii_lowercase().contains("; secure") {
                cookie
            } else {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            };
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Counts each request and its latency for `GET /metrics`, by route pattern (never the
/// path, which may carry a token) and status.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = std::time::Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.db.metrics().clone());
    let method = req.method().clone();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let outcome = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        metrics.observe_request(method.as_str(), &route, status.as_u16(), started.elapsed());
    }
    outcome
}

/// Request spans name the route pattern (`/enroll/{token}`), never the raw path, so that
/// tokens do not reach the logs.
pub struct RedactedRootSpan;

impl RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
        let _entered = span.enter();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "request done");
        } else {
            tracing::debug!(status = status.as_u16(), "request done");
        }
    }
}
