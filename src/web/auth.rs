//! Sign in, sign out, and the first-run page that creates the first administrator.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, CsrfForm, CsrfToken};
use super::error::AppError;
use super::layout::{Flash, flashes};
use super::request::{AppState, client_ip, safe_return_path, see_other};
use super::session::{self, SignedIn};
use crate::accounts::{self, NewPassword};
use crate::operations::SignIn;
use crate::principal::Principal;
use crate::values::EmailAddress;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    flashes: Vec<Flash>,
    csrf_token: String,
    email: String,
    next: String,
    error: Option<String>,
    /// "Sign in with <name>", when single sign-on is configured.
    sso_name: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: CsrfToken,
    query: web::Query<LoginQuery>,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    if SignedIn::from_session(&actix_session::SessionExt::get_session(&req)).is_some() {
        return Ok(see_other(safe_return_path(&query.next)));
    }
    Ok(LoginPage {
        flashes: flashes(&incoming),
        csrf_token: token.0,
        email: String::new(),
        next: query.into_inner().next,
        error: None,
        sso_name: state.ops.single_sign_on_name().map(str::to_owned),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct LoginInput {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: CsrfToken,
    CsrfForm(input): CsrfForm<LoginInput>,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req, state.config.trust_proxy);
    // One form of the address for the limit and the lookup alike, so that no variant of
    // it (case, spaces, control characters) gets tries of its own.
    let email =
        super::request::plain_text(input.email.trim(), crate::values::email::MAX_EMAIL_LENGTH);
    let email_key = accounts::email_key(&email);
    if let Err(retry) = state.limits.sign_in_attempt(&email_key, ip.as_deref()) {
        return Err(AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        });
    }
    let password = SecretString::from(input.password);
    let account = match state.ops.sign_in(ip, email_key, password).await? {
        SignIn::SignedIn(account) => account,
        // Every hashing slot taken: another try in a second may find one.
        SignIn::Busy => {
            state
                .db
                .metrics()
                .count_rate_limit_refusal("password_hashing");
            return Err(AppError::TooManyRequests {
                retry_after_seconds: 1,
            });
        }
        SignIn::Refused => {
            state.limits.sign_in_failed();
            state.db.metrics().count_sign_in_failure();
            let error = "That email and password do not match an active account.";
            return Ok(refused_page(&req, &state, token, email, input.next, error));
        }
        SignIn::SingleSignOnOnly => {
            let error = format!(
                "Password sign-in is turned off on this console: use \"Sign in with {}\".",
                state.ops.single_sign_on_name().unwrap_or("single sign-on")
            );
            return Ok(refused_page(&req, &state, token, email, input.next, &error));
        }
        // The password was right; the session starts only after the second step.
        SignIn::Pending(_, pending_token) => {
            let target = format!(
                "/login/two-factor?next={}",
                url::form_urlencoded::byte_serialize(input.next.as_bytes()).collect::<String>()
            );
            let mut response = see_other(&target);
            response
                .add_cookie(&super::two_factor::pending_cookie(&pending_token))
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("cannot set a cookie: {e}")))?;
            return Ok(response);
        }
    };
    session::sign_in(&session, &account.id)?;
    csrf::rotate(&req);
    Ok(see_other(safe_return_path(&input.next)))
}

fn refused_page(
    req: &HttpRequest,
    state: &AppState,
    token: CsrfToken,
    email: String,
    next: String,
    error: &str,
) -> HttpResponse {
    LoginPage {
        flashes: Vec::new(),
        csrf_token: token.0,
        email,
        next,
        error: Some(error.to_owned()),
        sso_name: state.ops.single_sign_on_name().map(str::to_owned),
    }
    .customize()
    .with_status(StatusCode::UNAUTHORIZED)
    .respond_to(req)
    .map_into_boxed_body()
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    if let Some(account) = SignedIn::from_session(&session) {
        let principal = Principal::account(
            &account.account_id,
            &account.email,
            account.role,
            client_ip(&req, state.config.trust_proxy),
        );
        state.ops.sign_out(&principal).await?;
    }
    session::sign_out(&session);
    csrf::rotate(&req);
    FlashMessage::info("You have signed out.").send();
    Ok(see_other("/login"))
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf_token: String,
    input: SetupInput,
    errors: SetupErrors,
}

#[derive(Deserialize, Default)]
pub struct SetupInput {
    #[serde(default)]
    setup_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

#[derive(Default)]
struct SetupErrors {
    setup_code: Option<String>,
    email: Option<String>,
    password: Option<String>,
    password_confirmation: Option<String>,
}

impl SetupErrors {
    fn any(&self) -> bool {
        self.setup_code.is_some()
            || self.email.is_some()
            || self.password.is_some()
            || self.password_confirmation.is_some()
    }
}

pub async fn setup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: CsrfToken,
) -> Result<HttpResponse, AppError> {
    if state.ops.console_is_set_up().await? {
        return Ok(see_other("/login"));
    }
    Ok(SetupPage {
        csrf_token: token.0,
        input: SetupInput::default(),
        errors: SetupErrors::default(),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

pub async fn setup(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: CsrfToken,
    CsrfForm(input): CsrfForm<SetupInput>,
) -> Result<HttpResponse, AppError> {
    if state.ops.console_is_set_up().await? {
        return Ok(see_other("/login"));
    }
    let ip = client_ip(&req, state.config.trust_proxy);
    if let Err(retry) = state.limits.setup_attempt(ip.as_deref()) {
        return Err(AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        });
    }
    let code_ok = state
        .ops
        .setup_code_is_valid(input.setup_code.clone())
        .await?;
    let mut errors = SetupErrors::default();
    if !code_ok {
        errors.setup_code = Some(
            "This is not the current setup code. Copy it from the console's log, where it \
             was printed at start."
                .to_owned(),
        );
    }
    let email = EmailAddress::parse(&input.email)
        .map_err(|e| errors.email = Some(e.to_string()))
        .ok();
    let password = SecretString::from(input.password.clone());
    let new_password = NewPassword::parse(&password, &input.email)
        .map_err(|e| errors.password = Some(e.to_string()))
        .ok();
    if input.password != input.password_confirmation {
        errors.password_confirmation = Some("The two passwords are not the same.".to_owned());
    }
    let (Some(email), Some(new_password), false) = (email, new_password, errors.any()) else {
        // Passwords are never sent back to the browser.
        let input = SetupInput {
            password: String::new(),
            password_confirmation: String::new(),
            ..input
        };
        return Ok(SetupPage {
            csrf_token: token.0,
            input,
            errors,
        }
        .customize()
        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        .respond_to(&req)
        .map_into_boxed_body());
    };
    let account_id = state
        .ops
        .set_up_first_administrator(
            &Principal::anonymous(ip),
            input.setup_code,
            email,
            new_password,
        )
        .await?;
    let Some(account_id) = account_id else {
        return Ok(see_other("/login"));
    };
    session::sign_in(&session, &account_id)?;
    csrf::rotate(&req);
    FlashMessage::success("Your administrator account is ready. Next, set up user invitations.")
        .send();
    Ok(see_other("/settings/invitations"))
}
