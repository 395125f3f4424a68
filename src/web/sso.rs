//! Single sign-on: `GET /login/oidc` sends the browser to the identity provider, and
//! `GET /login/oidc/callback` takes its answer back. The state this browser started
//! with is kept in a cookie of its own (SameSite=Lax: the provider's redirect back is a
//! cross-site navigation), so that an answer meant for another browser is refused.

use actix_session::Session;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::csrf;
use super::error::AppError;
use super::request::{AppState, client_ip, see_other};
use super::session;
use crate::operations::{Callback, SingleSignOn, SsoRefusal, SsoStart};
use crate::principal::Principal;

const STATE_COOKIE: &str = "enroll_oidc_state";
const STATE_COOKIE_PATH: &str = "/login/oidc";

#[derive(Template, WebTemplate)]
#[template(path = "sign_in_refused.html")]
struct RefusedPage {
    message: String,
}

fn refused(req: &HttpRequest, refusal: &SsoRefusal) -> HttpResponse {
    let status = match refusal {
        SsoRefusal::NotConfigured => StatusCode::NOT_FOUND,
        SsoRefusal::Unreachable(_) => StatusCode::BAD_GATEWAY,
        SsoRefusal::NoPublicUrl => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    let mut response = RefusedPage {
        message: refusal.message(),
    }
    .customize()
    .with_status(status)
    .respond_to(req)
    .map_into_boxed_body();
    response
        .add_removal_cookie(&state_cookie(String::new()))
        .ok();
    response
}

fn state_cookie(value: String) -> Cookie<'static> {
    Cookie::build(STATE_COOKIE, value)
        .path(STATE_COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::minutes(10))
        .finish()
}

/// `GET /login/oidc`: to the identity provider.
pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let principal = Principal::anonymous(client_ip(&req, state.config.trust_proxy));
    match state.ops.begin_single_sign_on(&principal).await? {
        SsoStart::Redirect { url, state } => {
            let mut response = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, url))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
            response
                .add_cookie(&state_cookie(state))
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("cannot set a cookie: {e}")))?;
            Ok(response)
        }
        SsoStart::Refused(refusal) => Ok(refused(&req, &refusal)),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// `GET /login/oidc/callback`: the provider's answer.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let principal = Principal::anonymous(client_ip(&req, state.config.trust_proxy));
    let browser_state = req.cookie(STATE_COOKIE).map(|c| c.value().to_owned());
    let query = query.into_inner();
    let callback = Callback {
        state: query.state,
        code: query.code,
        error: query.error,
        error_description: query.error_description,
        iss: query.iss,
    };
    match state
        .ops
        .finish_single_sign_on(&principal, browser_state, callback)
        .await?
    {
        SingleSignOn::SignedIn(account) => {
            session::sign_in(&session, &account.id)?;
            csrf::rotate(&req);
            let mut response = see_other("/users");
            response
                .add_removal_cookie(&state_cookie(String::new()))
                .ok();
            Ok(response)
        }
        SingleSignOn::Refused(refusal) => {
            state.db.metrics().count_sign_in_failure();
            Ok(refused(&req, &refusal))
        }
    }
}
