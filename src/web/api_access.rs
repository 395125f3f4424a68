//! "API access" (administrators only): make machine credentials, see them with their
//! last use, revoke them. A secret is shown once, in the page that answers the form.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::AppError;
use super::layout::{ConsolePage, Layout, Section};
use super::request::{AppState, path_id, see_other};
use crate::accounts::Role;
use crate::credentials::{CredentialKind, CredentialName, CredentialRow, IssuedSecret};
use crate::operations::CredentialAdded;
use crate::time_format;

struct CredentialView {
    id: String,
    name: String,
    kind_label: &'static str,
    role_label: &'static str,
    key_id: Option<String>,
    created_by: String,
    created_at: String,
    last_used: String,
    revoked: Option<String>,
}

impl From<&CredentialRow> for CredentialView {
    fn from(row: &CredentialRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            kind_label: row.kind().label(),
            role_label: row.role().label(),
            key_id: row.key_id.clone(),
            created_by: row.created_by.clone(),
            created_at: time_format::short(row.created_at),
            last_used: row
                .last_used_at
                .map_or_else(|| "Never".to_owned(), time_format::short),
            revoked: row.revoked_at.map(time_format::short),
        }
    }
}

/// The credential just made, with its secret: on this page only.
struct Created {
    name: String,
    kind_label: &'static str,
    key_id: Option<String>,
    secret: String,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Default)]
struct FormErrors {
    name: Option<String>,
    kind: Option<String>,
    role: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "api_access.html")]
struct ApiAccessPage {
    layout: Layout,
    scim_base_url: String,
    credentials: Vec<CredentialView>,
    created: Option<Created>,
    entered_name: String,
    kinds: Vec<Choice>,
    roles: Vec<Choice>,
    errors: FormErrors,
}

struct Entered {
    name: String,
    kind: CredentialKind,
    role: Role,
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    page: ConsolePage,
    entered: Entered,
    errors: FormErrors,
    created: Option<Created>,
) -> Result<HttpResponse, AppError> {
    let principal = page.principal(req, state);
    let rows = state.ops.credentials(&principal).await?;
    let scim_base_url = match state.ops.invitation_settings().await? {
        Some(settings) => format!("{}/scim/v2", settings.public_url.trim_end_matches('/')),
        None => "<public URL>/scim/v2".to_owned(),
    };
    let invalid = errors.name.is_some() || errors.kind.is_some() || errors.role.is_some();
    let view = ApiAccessPage {
        layout: page.layout.in_section(Section::ApiAccess),
        scim_base_url,
        credentials: rows.iter().map(CredentialView::from).collect(),
        created,
        entered_name: entered.name,
        kinds: CredentialKind::ALL
            .into_iter()
            .map(|kind| Choice {
                value: kind.as_str(),
                label: kind.label(),
                selected: kind == entered.kind,
            })
            .collect(),
        roles: Role::ALL
            .into_iter()
            .map(|role| Choice {
                value: role.as_str(),
                label: role.label(),
                selected: role == entered.role,
            })
            .collect(),
        errors,
    };
    Ok(view
        .customize()
        .with_status(if invalid {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        })
        // The page may hold a secret: no cache may keep it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .respond_to(req)
        .map_into_boxed_body())
}

pub async fn show(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let entered = Entered {
        name: String::new(),
        kind: CredentialKind::Scim,
        role: Role::Helpdesk,
    };
    render(&req, &state, page, entered, FormErrors::default(), None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    role: String,
}

pub async fn create(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let mut errors = FormErrors::default();
    let name = CredentialName::parse(&form.name)
        .map_err(|e| errors.name = Some(e.to_string()))
        .ok();
    let kind = CredentialKind::parse(&form.kind);
    if kind.is_none() {
        errors.kind = Some("Choose SCIM token or Access key.".to_owned());
    }
    let role = match kind {
        Some(CredentialKind::Scim) => Some(Role::Administrator),
        _ => Role::parse(&form.role),
    };
    if role.is_none() {
        errors.role = Some("Choose Administrator or Help desk.".to_owned());
    }
    let entered = Entered {
        name: form.name.chars().take(200).collect(),
        kind: kind.unwrap_or(CredentialKind::Scim),
        role: Role::parse(&form.role).unwrap_or(Role::Helpdesk),
    };
    let (Some(name), Some(kind), Some(role)) = (name, kind, role) else {
        return render(&req, &state, page, entered, errors, None).await;
    };
    let added = state
        .ops
        .create_credential(&page.principal(&req, &state), kind, name, role)
        .await?;
    let created = match added {
        CredentialAdded::NameTaken => {
            errors.name = Some(
                "A credential with this name exists; revoke it first or choose another name."
                    .to_owned(),
            );
            return render(&req, &state, page, entered, errors, None).await;
        }
        CredentialAdded::Added(row, IssuedSecret::Scim { token }) => Created {
            name: row.name,
            kind_label: kind.label(),
            key_id: None,
            secret: token.expose_secret().to_owned(),
        },
        CredentialAdded::Added(row, IssuedSecret::AccessKey { key_id, secret }) => Created {
            name: row.name,
            kind_label: kind.label(),
            key_id: Some(key_id),
            secret: secret.expose_secret().to_owned(),
        },
    };
    let blank = Entered {
        name: String::new(),
        kind: CredentialKind::Scim,
        role: Role::Helpdesk,
    };
    render(
        &req,
        &state,
        page,
        blank,
        FormErrors::default(),
        Some(created),
    )
    .await
}

#[derive(Template, WebTemplate)]
#[template(path = "api_revoke.html")]
struct RevokeConfirmation {
    layout: Layout,
    id: String,
    name: String,
    kind_label: &'static str,
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    confirm: String,
}

pub async fn revoke(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let id = path_id(&path.into_inner())?;
    let principal = page.principal(&req, &state);
    if form.confirm != "yes" {
        let row = state.ops.credential(&principal, id).await?;
        if !row.is_live() {
            FlashMessage::info(format!("“{}” was already revoked.", row.name)).send();
            return Ok(see_other("/settings/api"));
        }
        return Ok(RevokeConfirmation {
            layout: page.layout.in_section(Section::ApiAccess),
            id: row.id.clone(),
            name: row.name.clone(),
            kind_label: row.kind().label(),
        }
        .respond_to(&req)
        .map_into_boxed_body());
    }
    match state.ops.revoke_credential(&principal, id).await? {
        Some(row) => FlashMessage::success(format!(
            "Revoked {} “{}”: it no longer works.",
            row.kind().label(),
            row.name
        ))
        .send(),
        None => FlashMessage::info("That credential was already revoked.").send(),
    }
    Ok(see_other("/settings/api"))
}
