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
use super::error::AppError;
use super::layout::{ConsolePage, Layout, Section};
use super::request::{AppState, see_other};
use crate::accounts::{AccountRow, NewPassword, Role};
use crate::operations::{AccountAdded, AccountChange};
use crate::time_format;
use crate::values::EmailAddress;

struct AccountView {
    id: String,
    email: String,
    role_label: &'static str,
    active: bool,
    added: String,
    two_factor: bool,
    has_password: bool,
}

impl From<&AccountRow> for AccountView {
    fn from(row: &AccountRow) -> Self {
        Self {
            id: row.id.clone(),
            email: row.email.clone(),
            role_label: row.role().label(),
            active: row.is_active(),
            added: time_format::short(row.created_at),
            two_factor: row.has_two_factor(),
            has_password: row.has_password(),
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
    two_factor_required: bool,
}

async fn render_list(
    req: &HttpRequest,
    state: &AppState,
    page: ConsolePage,
    email: String,
    role: Role,
    errors: NewAccountErrors,
) -> Result<HttpResponse, AppError> {
    let principal = page.principal(req, state);
    let rows = state.ops.accounts(&principal).await?;
    let two_factor_required = state.ops.two_factor_required(&principal).await?;
    let layout = page.layout;
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
        two_factor_required,
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
        page,
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
        return render_list(&req, &state, page, form.email, role, errors).await;
    };
    let added = state
        .ops
        .add_account(&page.principal(&req, &state), email.clone(), role, password)
        .await?;
    if let AccountAdded::AlreadyExists = added {
        let errors = NewAccountErrors {
            email: Some("An account with this email address already exists.".to_owned()),
            ..NewAccountErrors::default()
        };
        return render_list(&req, &state, page, form.email, role, errors).await;
    }
    FlashMessage::success(format!("Added {} account {email}.", role.label())).send();
    Ok(see_other("/accounts"))
}

/// Asks whether an account change went through; the web layer shows it as a flash.
pub(super) fn flash_account_change(
    change: AccountChange,
    done: impl FnOnce(&AccountRow) -> String,
) -> bool {
    flash_change(change, done)
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

async fn load(
    req: &HttpRequest,
    state: &AppState,
    page: &ConsolePage,
    id: String,
) -> Result<AccountRow, AppError> {
    Ok(state.ops.account(&page.principal(req, state), id).await?)
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
    let account = load(
        &req,
        &state,
        &page,
        super::request::path_id(&path.into_inner())?,
    )
    .await?;
    Ok(account_page(page, &account)
        .respond_to(&req)
        .map_into_boxed_body())
}

/// Tells how an account change went, on the next page.
fn flash_change(change: AccountChange, done: impl FnOnce(&AccountRow) -> String) -> bool {
    match change {
        AccountChange::Done(account) => {
            FlashMessage::success(done(&account)).send();
            true
        }
        AccountChange::Refused(reason) => {
            FlashMessage::error(reason).send();
            false
        }
    }
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
    let id = super::request::path_id(&path.into_inner())?;
    let back = format!("/accounts/{id}");
    let Some(role) = Role::parse(&form.role) else {
        FlashMessage::error("Choose Administrator or Help desk.").send();
        return Ok(see_other(&back));
    };
    let change = state
        .ops
        .change_role(&page.principal(&req, &state), id, role)
        .await?;
    flash_change(change, |account| {
        format!("{} is now {}.", account.email, role.label())
    });
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
    let id = super::request::path_id(&path.into_inner())?;
    let account = load(&req, &state, &page, id.clone()).await?;
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
    let is_self = id == page.account.account_id;
    let change = state
        .ops
        .reset_password(&page.principal(&req, &state), id.clone(), password)
        .await?;
    if let AccountChange::Refused(reason) = change {
        return Err(AppError::BadRequest(reason));
    }
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
    let id = super::request::path_id(&path.into_inner())?;
    let back = format!("/accounts/{id}");
    if form.confirm != "yes" {
        let account = load(&req, &state, &page, id.clone()).await?;
        let pending_invitations = state
            .ops
            .pending_invitations_sent_by(&page.principal(&req, &state), id)
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
    let change = state
        .ops
        .disable_account(&page.principal(&req, &state), id, revoke)
        .await?;
    let disabled = flash_change(change, |account| {
        format!("{} is disabled and signed out everywhere.", account.email)
    });
    if disabled && is_self {
        return Ok(see_other("/login"));
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
    let id = super::request::path_id(&path.into_inner())?;
    let back = format!("/accounts/{id}");
    let change = state
        .ops
        .enable_account(&page.principal(&req, &state), id)
        .await?;
    flash_change(change, |account| {
        format!("{} can sign in again.", account.email)
    });
    Ok(see_other(&back))
}
