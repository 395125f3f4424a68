//! CSRF protection, as Django does it: a random secret in a cookie, a masked copy of it
//! in every form (a fresh mask each time, so compression cannot leak it), compared on
//! every POST; the secret changes at sign-in and sign-out. The middleware also refuses
//! POSTs that the browser says come from another site.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::crypto;
use crate::web::error::AppError;

pub const COOKIE_NAME: &str = "enroll_csrf";
pub const FIELD_NAME: &str = "csrf_token";
const SECRET_LENGTH: usize = 32;
/// Large enough for a 1,000-row invite form.
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// This request's CSRF secret (from its cookie, or new).
#[derive(Clone)]
struct CsrfSecret([u8; SECRET_LENGTH]);

/// Set by a handler (sign-in, sign-out) to give the browser a new secret.
#[derive(Clone, Copy)]
struct RotateSecret;

impl CsrfSecret {
    fn from_cookie(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value.as_bytes()).ok()?;
        bytes.try_into().ok().map(Self)
    }

    fn cookie_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// mask || (mask XOR secret), base64url.
    fn masked_token(&self) -> String {
        let mask = crypto::random_bytes::<SECRET_LENGTH>();
        let mut token = Vec::with_capacity(SECRET_LENGTH * 2);
        token.extend_from_slice(&mask);
        token.extend(mask.iter().zip(self.0.iter()).map(|(m, s)| m ^ s));
        URL_SAFE_NO_PAD.encode(token)
    }

    fn accepts(&self, token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token.trim().as_bytes()) else {
            return false;
        };
        if bytes.len() != SECRET_LENGTH * 2 {
            return false;
        }
        let (mask, masked) = bytes.split_at(SECRET_LENGTH);
        let unmasked: Vec<u8> = mask.iter().zip(masked).map(|(m, s)| m ^ s).collect();
        crypto::constant_time_eq(&unmasked, &self.0)
    }
}

/// Gives every request a secret, sets the cookie when it is new or rotated, and
/// refuses cross-site POSTs before any handler runs.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let existing = req
        .cookie(COOKIE_NAME)
        .and_then(|c| CsrfSecret::from_cookie(c.value()));
    let is_new = existing.is_none();
    let secret = existing.unwrap_or_else(|| CsrfSecret(crypto::random_bytes()));
    if req.method() == Method::POST && is_cross_site(req.request()) {
        return Err(AppError::Csrf.into());
    }
    req.extensions_mut().insert(secret.clone());
    let mut response = next.call(req).await?;
    let rotate = response
        .request()
        .extensions()
        .get::<RotateSecret>()
        .is_some();
    if is_new || rotate {
        let secret = if rotate {
            CsrfSecret(crypto::random_bytes())
        } else {
            secret
        };
        let secure = response.request().connection_info().scheme() == "https";
        let cookie = Cookie::build(COOKIE_NAME, secret.cookie_value())
            .path("/")
            .http_only(true)
            .secure(secure)
            // Lax, like the session: with Strict, arriving from a link on another site
            // sends no cookie, a new secret is issued, and forms open in other tabs fail.
            // Cross-site posts are refused by the Origin check and the token.
            .same_site(SameSite::Lax)
            .finish();
        response.response_mut().add_cookie(&cookie)?;
    }
    Ok(response)
}

/// Browsers say where a request comes from (Sec-Fetch-Site, or Origin); a form posted
/// from another site is refused even before its token is looked at.
fn is_cross_site(req: &HttpRequest) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = req.headers().get("origin").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if origin == "null" {
        return true;
    }
    let host = req.connection_info().host().to_owned();
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    !origin_host.eq_ignore_ascii_case(&host)
}

/// Asks the middleware to replace the secret in this response (sign-in, sign-out).
pub fn rotate(req: &HttpRequest) {
    req.extensions_mut().insert(RotateSecret);
}

/// The masked token a page puts in its forms.
#[derive(Clone)]
pub struct CsrfToken(pub String);

impl FromRequest for CsrfToken {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .extensions()
            .get::<CsrfSecret>()
            .map(|secret| Self(secret.masked_token()))
            .ok_or_else(|| {
                AppError::Unexpected(anyhow::anyhow!("CSRF middleware is not installed"))
            });
        ready(token)
    }
}

#[derive(serde::Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf_token: String,
}

/// A URL-encoded form whose CSRF token has been checked; repeated fields become Vecs.
/// Every POST handler takes its input through this, so none can forget the check.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
            let body = first_fields(&body, MAX_FIELDS);
            let token: TokenField =
                serde_html_form::from_bytes(body).map_err(|_| AppError::Csrf)?;
            verify(&req, &token.csrf_token)?;
            serde_html_form::from_bytes(body)
                .map(CsrfForm)
                .map_err(|e| AppError::BadRequest(format!("The form was not understood: {e}")))
        })
    }
}

/// Fields read from a form at most: a full invite form (three per row, one row more
/// than allowed, so that the handler sees there were too many) and a few others. A 2 MB
/// body can hold ~300,000 fields, and parsing groups every one of them before any
/// handler could cut the list.
const MAX_FIELDS: usize = 3 * (super::invite::MAX_ROWS + 1) + 16;

/// The body up to its `max`th field; what follows is never read.
fn first_fields(body: &[u8], max: usize) -> &[u8] {
    match body
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'&')
        .nth(max.saturating_sub(1))
    {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

/// Checks the token of a form that [`CsrfForm`] does not read (a file upload).
pub fn verify(req: &HttpRequest, token: &str) -> Result<(), AppError> {
    let valid = req
        .extensions()
        .get::<CsrfSecret>()
        .is_some_and(|secret| secret.accepts(token));
    if valid { Ok(()) } else { Err(AppError::Csrf) }
}

/// The body limit for forms, applied through `web::PayloadConfig`.
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(FORM_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_up_to_their_last_allowed_field() {
        assert_eq!(first_fields(b"a=1&b=2&c=3", 2), b"a=1&b=2");
        assert_eq!(first_fields(b"a=1&b=2", 2), b"a=1&b=2");
        assert_eq!(first_fields(b"", 2), b"");
    }

    #[test]
    fn masked_tokens_differ_but_all_verify() {
        let secret = CsrfSecret(crypto::random_bytes());
        let (a, b) = (secret.masked_token(), secret.masked_token());
        assert_ne!(a, b);
        assert!(secret.accepts(&a) && secret.accepts(&b));
        let other = CsrfSecret(crypto::random_bytes());
        assert!(!other.accepts(&a));
        assert!(!secret.accepts(""));
        assert!(!secret.accepts("not base64 at all!"));
        assert!(!secret.accepts(&secret.cookie_value()));
    }
}
