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
use super::layout::{Flash, flashes};
use super::session::{self, SignedIn};
use super::{AppState, client_ip, safe_return_path, see_other};
use crate::accounts::{self, NewPassword, Role, setup_code};
use crate::audit::{self, Action, Actor, NewAuditEvent};
use crate::db::write_transaction;
use crate::error::AppError;
use crate::users::EmailAddress;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    flashes: Vec<Flash>,
    csrf_token: String,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

pub async fn login_form(
    req: HttpRequest,
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
    let email = super::plain_text(input.email.trim(), crate::users::email::MAX_EMAIL_LENGTH);
    let email_key = accounts::email_key(&email);
    if let Err(retry) = state.limits.sign_in_attempt(&email_key, ip.as_deref()) {
        return Err(AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        });
    }
    let password = SecretString::from(input.password);
    let account = state
        .db
        .run(move |conn| Ok(accounts::find_by_email(conn, &email_key)?))
        .await?;
    let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
    let known_account_email = account.as_ref().map(|a| a.email.clone());
    // Argon2 takes tens of milliseconds of CPU: keep it off the request threads.
    let password_ok =
        web::block(move || accounts::verify_password(&password, stored_hash.as_deref())).await?;
    let now = state.clock.now();
    let signed_in = match account {
        Some(account) if password_ok && account.is_active() => Some(account),
        _ => None,
    };
    let Some(account) = signed_in else {
        // Only an address that belongs to an account is logged: what was typed into
        // the Email field may be someone's password.
        let detail = match known_account_email {
            Some(_) => "wrong password, or account disabled",
            None => "no account with the address typed",
        };
        state
            .db
            .run(move |conn| {
                audit::record(
                    conn,
                    &[NewAuditEvent::new(
                        now,
                        &Actor::anonymous(ip),
                        Action::SignInFailed,
                        known_account_email.as_deref(),
                        detail,
                    )],
                )?;
                Ok(())
            })
            .await?;
        return Ok(LoginPage {
            flashes: Vec::new(),
            csrf_token: token.0,
            email,
            next: input.next,
            error: Some("That email and password do not match an active account.".to_owned()),
        }
        .customize()
        .with_status(StatusCode::UNAUTHORIZED)
        .respond_to(&req)
        .map_into_boxed_body());
    };
    let actor = Actor::account(&account.id, &account.email, ip);
    state
        .db
        .run(move |conn| {
            audit::record(
                conn,
                &[NewAuditEvent::new(now, &actor, Action::SignIn, None, "")],
            )?;
            Ok(())
        })
        .await?;
    session::sign_in(&session, &account.id)?;
    csrf::rotate(&req);
    Ok(see_other(safe_return_path(&input.next)))
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
        let actor = Actor::account(
            &account.account_id,
            &account.email,
            client_ip(&req, state.config.trust_proxy),
        );
        let now = state.clock.now();
        state
            .db
            .run(move |conn| {
                audit::record(
                    conn,
                    &[NewAuditEvent::new(now, &actor, Action::SignOut, None, "")],
                )?;
                Ok(())
            })
            .await?;
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

async fn console_is_set_up(state: &AppState) -> Result<bool, AppError> {
    state.db.run(|conn| Ok(accounts::any_exist(conn)?)).await
}

pub async fn setup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: CsrfToken,
) -> Result<HttpResponse, AppError> {
    if console_is_set_up(&state).await? {
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
    if console_is_set_up(&state).await? {
        return Ok(see_other("/login"));
    }
    let ip = client_ip(&req, state.config.trust_proxy);
    if let Err(retry) = state.limits.setup_attempt(ip.as_deref()) {
        return Err(AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        });
    }
    let now = state.clock.now();
    let code = input.setup_code.clone();
    let code_ok = state
        .db
        .run(move |conn| Ok(setup_code::is_valid(conn, &code, now)?))
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
    let hash = web::block(move || new_password.hash()).await??;
    let account_id = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                if accounts::any_exist(conn)? {
                    return Ok(None);
                }
                let id = accounts::create(conn, now, &email, &hash, Role::Administrator)
                    .map_err(|e| AppError::Unexpected(e.into()))?;
                setup_code::clear(conn)?;
                let actor = Actor::account(&id, email.as_str(), ip);
                audit::record(
                    conn,
                    &[NewAuditEvent::new(
                        now,
                        &actor,
                        Action::AccountAdd,
                        Some(email.as_str()),
                        "first administrator, from the setup page",
                    )],
                )?;
                Ok(Some(id))
            })
        })
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
