//! The actions on selected rows of the Users page: Resend invitation and Remove user,
//! and "Remove expired invitations".

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::error::Error;
use crate::time_format;
use crate::users::UserLabel;
use crate::users::invitations::UserIdentity;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{ConsolePage, Layout, Section};
use crate::web::request::{AppState, safe_return_path, see_other};

/// Selecting more rows than this at once is refused (a page shows at most 100).
const MAX_SELECTION: usize = 1000;

#[derive(Deserialize)]
pub struct SelectionForm {
    #[serde(default)]
    user_id: Vec<String>,
    #[serde(default)]
    return_to: String,
    #[serde(default)]
    confirm: String,
}

impl SelectionForm {
    fn selected(&self) -> Result<Vec<String>, AppError> {
        // Ids are UUIDs; anything else selects nobody.
        let mut ids: Vec<String> = self
            .user_id
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id.trim()).ok())
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() > MAX_SELECTION {
            return Err(AppError::BadRequest(format!(
                "Select at most {MAX_SELECTION} users at a time."
            )));
        }
        Ok(ids)
    }

    fn back(&self) -> &str {
        if self.return_to.starts_with("/users") {
            safe_return_path(&self.return_to)
        } else {
            "/users"
        }
    }
}

/// "Ada Lovelace, Alan Turing and 3 more"
fn name_list(users: &[UserLabel]) -> String {
    const SHOWN: usize = 5;
    let names: Vec<&str> = users.iter().take(SHOWN).map(|u| u.name.as_str()).collect();
    match users.len() {
        0 => String::new(),
        n if n <= SHOWN => names.join(", "),
        n => format!("{} and {} more", names.join(", "), n - SHOWN),
    }
}

fn users_word(n: usize) -> String {
    if n == 1 {
        "1 user".to_owned()
    } else {
        format!("{n} users")
    }
}

pub async fn resend(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SelectionForm>,
) -> Result<HttpResponse, AppError> {
    let selected = form.selected()?;
    if selected.is_empty() {
        FlashMessage::warning("Select at least one user, then choose Resend invitation.").send();
        return Ok(see_other(form.back()));
    }
    let report = match state
        .ops
        .resend(&page.principal(&req, &state), selected)
        .await
    {
        Err(Error::NotSetUp) => {
            FlashMessage::error("Set up user invitations before resending any.").send();
            return Ok(see_other("/settings/invitations"));
        }
        other => other?,
    };
    let resent: Vec<UserLabel> = report
        .resent
        .iter()
        .filter(|u| !report.first_sent.contains(u))
        .cloned()
        .collect();
    if !report.first_sent.is_empty() {
        FlashMessage::success(format!(
            "Invitation sent to {}: {}.",
            users_word(report.first_sent.len()),
            name_list(&report.first_sent)
        ))
        .send();
    }
    if !resent.is_empty() {
        FlashMessage::success(format!(
            "Invitation resent to {}: {}. Their earlier links no longer work.",
            users_word(resent.len()),
            name_list(&resent)
        ))
        .send();
    }
    if !report.already_enrolled.is_empty() {
        FlashMessage::warning(format!(
            "{} already enrolled, not resent: {}.",
            report.already_enrolled.len(),
            name_list(&report.already_enrolled)
        ))
        .send();
    }
    if !report.deactivated.is_empty() {
        FlashMessage::warning(format!(
            "{} deactivated by the identity provider that manages them, not resent: {}. \
             Reactivate them in the identity provider (it sends a fresh invitation).",
            users_word(report.deactivated.len()),
            name_list(&report.deactivated)
        ))
        .send();
    }
    if let Some(latest) = report.rate_limited.iter().map(|(_, at)| *at).max() {
        let names: Vec<UserLabel> = report.rate_limited.iter().map(|(u, _)| u.clone()).collect();
        FlashMessage::warning(format!(
            "{} already resent {} times in the last hour, not resent: {}. Try again after {}.",
            users_word(names.len()),
            state.config.resend_limit_per_hour,
            name_list(&names),
            time_format::short(latest)
        ))
        .send();
    }
    if report.missing > 0 {
        FlashMessage::warning(format!(
            "{} no longer exist{} (removed meanwhile), nothing sent to them.",
            users_word(report.missing),
            if report.missing == 1 { "s" } else { "" }
        ))
        .send();
    }
    Ok(see_other(form.back()))
}

#[derive(Template, WebTemplate)]
#[template(path = "remove.html")]
struct RemoveConfirmation {
    layout: Layout,
    users: Vec<UserIdentity>,
    return_to: String,
}

pub async fn remove(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SelectionForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let selected = form.selected()?;
    if selected.is_empty() {
        FlashMessage::warning("Select at least one user, then choose Remove user.").send();
        return Ok(see_other(form.back()));
    }
    let principal = page.principal(&req, &state);
    if form.confirm != "yes" {
        let users = state.ops.users_to_remove(&principal, selected).await?;
        if users.is_empty() {
            FlashMessage::warning("The selected users no longer exist.").send();
            return Ok(see_other(form.back()));
        }
        return Ok(RemoveConfirmation {
            layout: page.layout.in_section(Section::Users),
            users,
            return_to: form.back().to_owned(),
        }
        .respond_to(&req)
        .map_into_boxed_body());
    }
    let removed = state.ops.remove(&principal, selected).await?;
    if removed.is_empty() {
        FlashMessage::warning("The selected users no longer exist; nothing was removed.").send();
    } else {
        FlashMessage::success(format!(
            "Removed {}: {}. Their invitation links no longer work.",
            users_word(removed.len()),
            name_list(&removed)
        ))
        .send();
    }
    Ok(see_other(form.back()))
}

pub const DEFAULT_EXPIRED_DAYS: i64 = 30;

#[derive(Template, WebTemplate)]
#[template(path = "remove_expired.html")]
struct RemoveExpiredPage {
    layout: Layout,
    days: String,
    days_error: Option<String>,
    count: usize,
    sample: Vec<String>,
}

/// "Expired more than N days ago": whole days, 0 to ten years.
fn parse_days(input: Option<&str>) -> Result<i64, String> {
    let Some(input) = input.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_EXPIRED_DAYS);
    };
    input
        .parse::<i64>()
        .ok()
        .filter(|d| (0..=3650).contains(d))
        .ok_or_else(|| "Enter a whole number of days from 0 to 3650.".to_owned())
}

#[derive(Deserialize)]
pub struct ExpiredParams {
    days: Option<String>,
}

/// The confirmation page of "Remove expired invitations".
pub async fn remove_expired_form(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    params: web::Query<ExpiredParams>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let (days, days_error) = match parse_days(params.days.as_deref()) {
        Ok(days) => (days, None),
        Err(message) => (DEFAULT_EXPIRED_DAYS, Some(message)),
    };
    let expired = state
        .ops
        .expired_users(&page.principal(&req, &state), days)
        .await?;
    Ok(RemoveExpiredPage {
        layout: page.layout.in_section(Section::Users),
        days: params.days.clone().unwrap_or_else(|| days.to_string()),
        days_error,
        count: expired.len(),
        sample: expired
            .iter()
            .take(20)
            .map(|(_, first, last, email)| format!("{first} {last} <{email}>"))
            .collect(),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct RemoveExpiredForm {
    #[serde(default)]
    days: String,
    #[serde(default)]
    confirm: String,
}

pub async fn remove_expired(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<RemoveExpiredForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let Ok(days) = parse_days(Some(&form.days)) else {
        return Ok(see_other(&format!(
            "/users/remove-expired?days={}",
            url::form_urlencoded::byte_serialize(form.days.as_bytes()).collect::<String>()
        )));
    };
    if form.confirm != "yes" {
        return Ok(see_other(&format!("/users/remove-expired?days={days}")));
    }
    let removed = state
        .ops
        .remove_expired(&page.principal(&req, &state), days)
        .await?;
    FlashMessage::success(format!(
        "Removed {} whose invitation expired more than {days} day{} ago without joining.",
        users_word(removed.len()),
        if days == 1 { "" } else { "s" }
    ))
    .send();
    Ok(see_other("/users"))
}
