//! "Console accounts" (administrators only): add an account with a role, change its
//! role, reset its password, disable or enable it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::layout::{ConsolePage, Layout, Section};
use super::{AppState, see_other};
use crate::accounts::{self, AccountChangeError, AccountRow, NewPassword, Role};
use crate::audit::{self, Action, Actor, NewAuditEvent};
use crate::db::write_transaction;
use crate::error::AppError;
use crate::time_format;
use crate::users::EmailAddress;
use crate::users::invitations::{self, Change};

struct AccountView {
    id: String,
    email: String,
    role_label: &'static str,
    active: bool,
    added: String,
}

impl From<&AccountRow> for AccountView {
    fn from(row: &AccountRow) -> Self {
        Self {
            id: row.id.clone(),
            email: row.email.clone(),
            role_label: row.role().label(),
            active: row.is_active(),
            added: time_format::short(row.created_at),
        }
    }
}

struct RoleOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn role_options(selected: Role) -> Vec<RoleOption> {
    Role::ALL
        .into_iter()
        .map(|role| RoleOption {
            value: role.as_str(),
            label: role.label(),
            selected: role == selected,
        })
        .collect()
}

#[derive(Default)]
struct NewAccountErrors {
    email: Option<String>,
    role: Option<String>,
    password: Option<String>,
    password_confirmation: Option<String>,
}

impl NewAccountErrors {
    fn any(&self) -> bool {
        self.email.is_some()
            || self.role.is_some()
            || self.password.is_some()
            || self.password_confirmation.is_some()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts.html")]
struct AccountsPage {
    layout: Layout,
    accounts: Vec<AccountView>,
    email: String,
    roles: Vec<RoleOption>,
    errors: NewAccountErrors,
}

async fn render_list(
    req: &HttpRequest,
    state: &AppState,
    layout: Layout,
    email: String,
    role: Role,
    errors: NewAccountErrors,
) -> Result<HttpResponse, AppError> {
    let rows = state.db.run(|conn| Ok(accounts::list(conn)?)).await?;
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(AccountsPage {
        layout: layout.in_section(Section::Accounts),
        accounts: rows.iter().map(AccountView::from).collect(),
        email,
        roles: role_options(role),
        errors,
    }
    .customize()
    .with_status(status)
    .respond_to(req)
    .map_into_boxed_body())
}

pub async fn list(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    render_list(
        &req,
        &state,
        page.layout,
        String::new(),
        Role::Helpdesk,
        NewAccountErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct NewAccountForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

pub async fn add(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<NewAccountForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let mut errors = NewAccountErrors::default();
    let email = EmailAddress::parse(&form.email)
        .map_err(|e| errors.email = Some(e.to_string()))
        .ok();
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.role = Some("Choose Administrator or Help desk.".to_owned());
    }
    let password = NewPassword::parse(&SecretString::from(form.password.clone()), &form.email)
        .map_err(|e| errors.password = Some(e.to_string()))
        .ok();
    if form.password != form.password_confirmation {
        errors.password_confirmation = Some("The two passwords are not the same.".to_owned());
    }
    let (Some(email), Some(role), Some(password), false) = (email, role, password, errors.any())
    else {
        let role = role.unwrap_or(Role::Helpdesk);
        return render_list(&req, &state, page.layout, form.email, role, errors).await;
    };
    let hash = web::block(move || password.hash()).await??;
    let now = state.clock.now();
    let actor = page.actor(&req, &state);
    let new_email = email.clone();
    let created = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                match accounts::create(conn, now, &new_email, &hash, role) {
                    Ok(_) => {}
                    Err(accounts::CreateAccountError::AlreadyExists) => return Ok(false),
                    Err(accounts::CreateAccountError::Database(e)) => return Err(e.into()),
                }
                audit::record(
                    conn,
                    &[NewAuditEvent::new(
                        now,
                        &actor,
                        Action::AccountAdd,
                        Some(new_email.as_str()),
                        role.label(),
                    )],
                )?;
                Ok::<_, AppError>(true)
            })
        })
        .await?;
    if !created {
        let errors = NewAccountErrors {
            email: Some("An account with this email address already exists.".to_owned()),
            ..NewAccountErrors::default()
        };
        return render_list(&req, &state, page.layout, form.email, role, errors).await;
    }
    FlashMessage::success(format!("Added {} account {email}.", role.label())).send();
    Ok(see_other("/accounts"))
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    account: AccountView,
    roles: Vec<RoleOption>,
    is_self: bool,
    password_error: Option<String>,
    password_confirmation_error: Option<String>,
}

async fn load(state: &AppState, id: String) -> Result<AccountRow, AppError> {
    state
        .db
        .run(move |conn| accounts::find(conn, &id)?.ok_or(AppError::NotFound))
        .await
}

fn account_page(page: ConsolePage, account: &AccountRow) -> AccountPage {
    AccountPage {
        is_self: account.id == page.account.account_id,
        layout: page.layout.in_section(Section::Accounts),
        account: AccountView::from(account),
        roles: role_options(account.role()),
        password_error: None,
        password_confirmation_error: None,
    }
}

pub async fn show(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let account = load(&state, super::path_id(&path.into_inner())?).await?;
    Ok(account_page(page, &account)
        .respond_to(&req)
        .map_into_boxed_body())
}

/// Runs an account change with its audit entry in one transaction; a refusal (last
/// administrator) comes back as a flash message on the account page.
async fn change_account(
    state: &AppState,
    actor: Actor,
    change: impl FnOnce(
        &mut crate::db::DbConnection,
        chrono::NaiveDateTime,
        &Actor,
    ) -> Result<(AccountRow, String), AccountChangeError>
    + Send
    + 'static,
) -> Result<Result<AccountRow, String>, AppError> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let result = write_transaction(conn, |conn| {
                let (account, detail) = change(conn, now, &actor)?;
                audit::record(
                    conn,
                    &[NewAuditEvent::new(
                        now,
                        &actor,
                        Action::AccountChange,
                        Some(&account.email),
                        detail,
                    )],
                )?;
                Ok(account)
            });
            match result {
                Ok(account) => Ok(Ok(account)),
                Err(AccountChangeError::NotFound) => Err(AppError::NotFound),
                Err(AccountChangeError::Database(e)) => Err(e.into()),
                Err(refused @ AccountChangeError::LastAdministrator) => {
                    Ok(Err(refused.to_string()))
                }
            }
        })
        .await
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn change_role(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let id = super::path_id(&path.into_inner())?;
    let back = format!("/accounts/{id}");
    let Some(role) = Role::parse(&form.role) else {
        FlashMessage::error("Choose Administrator or Help desk.").send();
        return Ok(see_other(&back));
    };
    let actor = page.actor(&req, &state);
    let target = id.clone();
    let result = change_account(&state, actor, move |conn, _, _| {
        let before = accounts::change_role(conn, &target, role)?;
        let detail = format!(
            "role changed from {} to {}",
            before.role().label(),
            role.label()
        );
        Ok((before, detail))
    })
    .await?;
    match result {
        Ok(account) => {
            FlashMessage::success(format!("{} is now {}.", account.email, role.label())).send()
        }
        Err(refused) => FlashMessage::error(refused).send(),
    }
    Ok(see_other(&back))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

pub async fn reset_password(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let id = super::path_id(&path.into_inner())?;
    let account = load(&state, id.clone()).await?;
    let password = NewPassword::parse(&SecretString::from(form.password.clone()), &account.email);
    let mismatch = form.password != form.password_confirmation;
    let password = match (password, mismatch) {
        (Ok(password), false) => password,
        (password, mismatch) => {
            let mut view = account_page(page, &account);
            view.password_error = password.err().map(|e| e.to_string());
            view.password_confirmation_error =
                mismatch.then(|| "The two passwords are not the same.".to_owned());
            return Ok(view
                .customize()
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .respond_to(&req)
                .map_into_boxed_body());
        }
    };
    let hash = web::block(move || password.hash()).await??;
    let is_self = id == page.account.account_id;
    let actor = page.actor(&req, &state);
    let target = id.clone();
    change_account(&state, actor, move |conn, _, _| {
        let account = accounts::reset_password(conn, &target, &hash)?;
        Ok((account, "password reset; its sessions ended".to_owned()))
    })
    .await?
    .map_err(AppError::BadRequest)?;
    if is_self {
        FlashMessage::success("Your password was changed. Sign in with the new one.").send();
        return Ok(see_other("/login"));
    }
    FlashMessage::success(format!(
        "New password set for {}. They were signed out everywhere.",
        account.email
    ))
    .send();
    Ok(see_other(&format!("/accounts/{id}")))
}

#[derive(Template, WebTemplate)]
#[template(path = "account_disable.html")]
struct DisableConfirmation {
    layout: Layout,
    account: AccountView,
    pending_invitations: usize,
}

#[derive(Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    revoke_invitations: String,
}

pub async fn disable(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<DisableForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let id = super::path_id(&path.into_inner())?;
    let back = format!("/accounts/{id}");
    if form.confirm != "yes" {
        let account = load(&state, id.clone()).await?;
        let now = state.clock.now();
        let pending_invitations = state
            .db
            .run(move |conn| Ok(invitations::count_pending_issued_by(conn, &id, now)?))
            .await?;
        return Ok(DisableConfirmation {
            layout: page.layout.in_section(Section::Accounts),
            account: AccountView::from(&account),
            pending_invitations,
        }
        .respond_to(&req)
        .map_into_boxed_body());
    }
    let revoke = form.revoke_invitations == "yes";
    let is_self = id == page.account.account_id;
    let actor = page.actor(&req, &state);
    let target = id.clone();
    let result = change_account(&state, actor, move |conn, now, actor| {
        let account = accounts::disable(conn, &target, now)?;
        let revoked = if revoke {
            invitations::revoke_issued_by(conn, &Change { now, actor }, &target)?
        } else {
            0
        };
        let detail = if revoke {
            format!("disabled; its sessions ended; {revoked} pending invitation(s) it sent revoked")
        } else {
            "disabled; its sessions ended".to_owned()
        };
        Ok((account, detail))
    })
    .await?;
    match result {
        Ok(account) => {
            state.counts.invalidate();
            FlashMessage::success(format!(
                "{} is disabled and signed out everywhere.",
                account.email
            ))
            .send();
            if is_self {
                return Ok(see_other("/login"));
            }
        }
        Err(refused) => FlashMessage::error(refused).send(),
    }
    Ok(see_other(&back))
}

pub async fn enable(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<super::auth::NoFields>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let id = super::path_id(&path.into_inner())?;
    let back = format!("/accounts/{id}");
    let actor = page.actor(&req, &state);
    let target = id.clone();
    let account = change_account(&state, actor, move |conn, _, _| {
        Ok((accounts::enable(conn, &target)?, "enabled".to_owned()))
    })
    .await?
    .map_err(AppError::BadRequest)?;
    FlashMessage::success(format!("{} can sign in again.", account.email)).send();
    Ok(see_other(&back))
}
