//! Two-factor sign-in pages: the second step after the password, setting it up when it
//! is required, the account's own page, and what administrators do about it.
//!
//! Between the password and the code the browser holds the half-done sign-in sealed in
//! its own cookie (path /login), apart from the session: the session exists only once
//! both steps are done, so a half-signed-in browser reaches nothing of the console.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::csrf::{self, CsrfForm, CsrfToken};
use super::error::AppError;
use super::layout::{ConsolePage, Layout};
use super::request::{AppState, client_ip, safe_return_path, see_other};
use super::session;
use crate::operations::{PendingSignIn, PendingStage, SecondFactor, TurnOn, TwoFactorSetup};

pub const PENDING_COOKIE: &str = "enroll_sign_in";
const WRONG_CODE: &str =
    "That code is not right, has expired, or was used already. Type the code the app shows now.";

/// The cookie that carries a half-done sign-in to the second step.
pub fn pending_cookie(token: &str) -> Cookie<'static> {
    Cookie::build(PENDING_COOKIE, token.to_owned())
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::minutes(5))
        .finish()
}

fn removed_pending_cookie() -> Cookie<'static> {
    let mut cookie = Cookie::build(PENDING_COOKIE, "").path("/login").finish();
    cookie.make_removal();
    cookie
}

fn pending(req: &HttpRequest, state: &AppState) -> Option<PendingSignIn> {
    let cookie = req.cookie(PENDING_COOKIE)?;
    state.ops.pending_sign_in(cookie.value())
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "login_code.html")]
struct CodePage {
    csrf_token: String,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login_two_factor_setup.html")]
struct SetUpAtSignInPage {
    csrf_token: String,
    email: String,
    next: String,
    setup: TwoFactorSetup,
    action: &'static str,
    code_error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login_recovery_codes.html")]
struct RecoveryCodesAtSignIn {
    recovery_codes: Vec<String>,
    next: String,
}

fn expired() -> HttpResponse {
    FlashMessage::info("Sign in again: the sign-in expired before its second step.").send();
    see_other("/login")
}

/// `GET /login/two-factor`: the second step (or, when two-factor is required and not
/// set up, the set-up step).
pub async fn code_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: CsrfToken,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(pending) = pending(&req, &state) else {
        return Ok(expired());
    };
    let next = query.into_inner().next;
    if pending.stage == PendingStage::SetUp {
        let setup = state
            .ops
            .new_two_factor_setup(&pending.account_id, &pending.email);
        return Ok(SetUpAtSignInPage {
            csrf_token: token.0,
            email: pending.email,
            next,
            setup,
            action: "/login/two-factor/setup",
            code_error: None,
        }
        .respond_to(&req)
        .map_into_boxed_body());
    }
    Ok(CodePage {
        csrf_token: token.0,
        email: pending.email,
        next,
        error: None,
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct CodeInput {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    setup: String,
}

/// The account's key in the sign-in limits, for tries of codes: a budget of its own
/// beside the password's, under the same limits.
fn code_key(email: &str) -> String {
    format!("second factor:{}", crate::accounts::email_key(email))
}

/// Counts a try of a code like a try of a password (same limits per account and per
/// client address).
fn throttle(state: &AppState, pending: &PendingSignIn, ip: Option<&str>) -> Result<(), AppError> {
    state
        .limits
        .sign_in_attempt(&code_key(&pending.email), ip)
        .map_err(|retry| AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        })
}

/// `POST /login/two-factor`: checks the code (or a recovery code) and signs in.
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: actix_session::Session,
    token: CsrfToken,
    CsrfForm(input): CsrfForm<CodeInput>,
) -> Result<HttpResponse, AppError> {
    let Some(pending) = pending(&req, &state).filter(|p| p.stage == PendingStage::Code) else {
        return Ok(expired());
    };
    let ip = client_ip(&req, state.config.trust_proxy);
    throttle(&state, &pending, ip.as_deref())?;
    let code = super::request::plain_text(&input.code, 64);
    match state.ops.verify_second_factor(ip, &pending, code).await? {
        SecondFactor::SignedIn(account) => {
            session::sign_in(&session, &account.id)?;
            csrf::rotate(&req);
            let mut response = see_other(safe_return_path(&input.next));
            response.add_removal_cookie(&removed_pending_cookie()).ok();
            Ok(response)
        }
        SecondFactor::Refused => {
            state.limits.sign_in_failed();
            state.db.metrics().count_sign_in_failure();
            Ok(CodePage {
                csrf_token: token.0,
                email: pending.email,
                next: input.next,
                error: Some(WRONG_CODE.to_owned()),
            }
            .customize()
            .with_status(StatusCode::UNAUTHORIZED)
            .respond_to(&req)
            .map_into_boxed_body())
        }
    }
}

/// `POST /login/two-factor/setup`: turns two-factor on for an account that must have
/// it, signs in, and shows the recovery codes once.
pub async fn set_up_at_sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: actix_session::Session,
    token: CsrfToken,
    CsrfForm(input): CsrfForm<CodeInput>,
) -> Result<HttpResponse, AppError> {
    let Some(pending) = pending(&req, &state).filter(|p| p.stage == PendingStage::SetUp) else {
        return Ok(expired());
    };
    let ip = client_ip(&req, state.config.trust_proxy);
    throttle(&state, &pending, ip.as_deref())?;
    let code = super::request::plain_text(&input.code, 64);
    let outcome = state
        .ops
        .set_up_two_factor_at_sign_in(ip, &pending, input.setup.clone(), code)
        .await?;
    match outcome {
        TurnOn::On {
            account,
            recovery_codes,
        } => {
            session::sign_in(&session, &account.id)?;
            csrf::rotate(&req);
            let mut response = RecoveryCodesAtSignIn {
                recovery_codes,
                next: safe_return_path(&input.next).to_owned(),
            }
            .customize()
            .insert_header(("Cache-Control", "no-store"))
            .respond_to(&req)
            .map_into_boxed_body();
            response.add_removal_cookie(&removed_pending_cookie()).ok();
            Ok(response)
        }
        TurnOn::WrongCode => {
            let setup = state
                .ops
                .reopen_two_factor_setup(&pending.account_id, &pending.email, &input.setup)
                .unwrap_or_else(|| {
                    state
                        .ops
                        .new_two_factor_setup(&pending.account_id, &pending.email)
                });
            Ok(SetUpAtSignInPage {
                csrf_token: token.0,
                email: pending.email,
                next: input.next,
                setup,
                action: "/login/two-factor/setup",
                code_error: Some(WRONG_CODE.to_owned()),
            }
            .customize()
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .respond_to(&req)
            .map_into_boxed_body())
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "own_account.html")]
struct OwnAccountPage {
    layout: Layout,
    csrf_token: String,
    email: String,
    role_label: &'static str,
    two_factor_on: bool,
    setup: Option<TwoFactorSetup>,
    recovery_codes: Option<Vec<String>>,
    action: &'static str,
    next: String,
    code_error: Option<String>,
}

/// `GET /account`: the signed-in account's own page.
pub async fn own_account(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let account = state.ops.own_account(&page.principal(&req, &state)).await?;
    let setup = (!account.has_two_factor() && account.has_password())
        .then(|| state.ops.new_two_factor_setup(&account.id, &account.email));
    Ok(OwnAccountPage {
        csrf_token: page.layout.csrf_token.clone(),
        layout: page.layout,
        email: account.email.clone(),
        role_label: account.role().label(),
        two_factor_on: account.has_two_factor(),
        setup,
        recovery_codes: None,
        action: "/account/two-factor",
        next: String::new(),
        code_error: None,
    }
    .customize()
    .insert_header(("Cache-Control", "no-store"))
    .respond_to(&req)
    .map_into_boxed_body())
}

/// `POST /account/two-factor`: turns two-factor on with a first code.
pub async fn turn_on(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(input): CsrfForm<CodeInput>,
) -> Result<HttpResponse, AppError> {
    let principal = page.principal(&req, &state);
    let ip = client_ip(&req, state.config.trust_proxy);
    state
        .limits
        .sign_in_attempt(
            &format!("two-factor setup:{}", page.account.account_id),
            ip.as_deref(),
        )
        .map_err(|retry| AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        })?;
    let code = super::request::plain_text(&input.code, 64);
    let outcome = state
        .ops
        .turn_on_two_factor(&principal, input.setup.clone(), code)
        .await?;
    let account_id = page.account.account_id.clone();
    let email = page.account.email.clone();
    let mut view = OwnAccountPage {
        csrf_token: page.layout.csrf_token.clone(),
        layout: page.layout,
        email: email.clone(),
        role_label: page.account.role.label(),
        two_factor_on: false,
        setup: None,
        recovery_codes: None,
        action: "/account/two-factor",
        next: String::new(),
        code_error: None,
    };
    let status = match outcome {
        TurnOn::On { recovery_codes, .. } => {
            view.two_factor_on = true;
            view.recovery_codes = Some(recovery_codes);
            StatusCode::OK
        }
        TurnOn::WrongCode => {
            view.setup = Some(
                state
                    .ops
                    .reopen_two_factor_setup(&account_id, &email, &input.setup)
                    .unwrap_or_else(|| state.ops.new_two_factor_setup(&account_id, &email)),
            );
            view.code_error = Some(WRONG_CODE.to_owned());
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    Ok(view
        .customize()
        .with_status(status)
        .insert_header(("Cache-Control", "no-store"))
        .respond_to(&req)
        .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct NoFields {}

/// `POST /accounts/{id}/two-factor/reset` (administrators).
pub async fn reset(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let id = super::request::path_id(&path.into_inner())?;
    let change = state
        .ops
        .reset_two_factor(&page.principal(&req, &state), id.clone())
        .await?;
    super::accounts::flash_account_change(change, |account| {
        format!("Two-factor sign-in of {} was reset.", account.email)
    });
    Ok(see_other(&format!("/accounts/{id}")))
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    require_two_factor: Option<String>,
}

/// `POST /accounts/two-factor-policy` (administrators).
pub async fn policy(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<PolicyForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let required = form.require_two_factor.is_some();
    state
        .ops
        .set_two_factor_required(&page.principal(&req, &state), required)
        .await?;
    FlashMessage::success(if required {
        "Two-factor sign-in is now required for every password account."
    } else {
        "Two-factor sign-in is no longer required."
    })
    .send();
    Ok(see_other("/accounts"))
}
