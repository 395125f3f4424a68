//! "Set up user invitations": the settings every invitation uses, with a preview of the
//! email before saving.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use chrono::TimeDelta;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::AppError;
use super::layout::{ConsolePage, Layout, Section};
use super::request::{AppState, see_other};
use crate::mail::compose::{self, RenderedEmail};
use crate::settings::{self, InvitationSettings, SettingsErrors, SettingsInput};

#[derive(Template, WebTemplate)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    input: SettingsInput,
    errors: SettingsErrors,
    first_time: bool,
    preview: Option<Preview>,
    min_days: i32,
    max_days: i32,
}

impl SettingsPage {
    /// Shown beside the public URL. Saving is still allowed: the administrator may be
    /// trying things out, or about to put TLS in front.
    fn public_url_warning(&self) -> Option<&'static str> {
        clear_text_warning(&self.input.public_url)
    }
}

/// Enrollment links, and the session cookie of whoever follows one, would cross the
/// network readable by anyone on the way, unless they never leave this computer.
fn clear_text_warning(public_url: &str) -> Option<&'static str> {
    let url = url::Url::parse(public_url.trim()).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host()? {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    (!loopback).then_some(
        "This address starts with http://, so enrollment links would travel unencrypted \
         and anyone on the way could read and use them. Use an https:// address unless \
         invitees only ever reach this console on this computer.",
    )
}

struct Preview {
    from: String,
    reply_to: String,
    subject: String,
    text: String,
    html: String,
}

pub async fn form(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let saved = state.ops.invitation_settings().await?;
    let first_time = saved.is_none();
    let input = match &saved {
        Some(settings) => SettingsInput::from(settings),
        None => {
            InvitationSettings::suggested_input(&suggested_public_url(&req), &page.account.email)
        }
    };
    Ok(SettingsPage {
        layout: page.layout.in_section(Section::Settings),
        input,
        errors: SettingsErrors::default(),
        first_time,
        preview: None,
        min_days: settings::MIN_VALIDITY_DAYS,
        max_days: settings::MAX_VALIDITY_DAYS,
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

/// Where this console appears to be, as a first guess the administrator confirms.
fn suggested_public_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(flatten)]
    input: SettingsInput,
    #[serde(default)]
    action: String,
}

pub async fn submit(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let preview_requested = form.action == "preview";
    let parsed = InvitationSettings::parse(&form.input);
    let first_time = state.ops.invitation_settings().await?.is_none();
    let settings = match parsed {
        Ok(settings) if !preview_requested => settings,
        Ok(settings) => {
            let rendered = preview(&settings, &page.account.email, state.clock.now())?;
            let mut response = SettingsPage {
                layout: page.layout.in_section(Section::Settings),
                input: form.input,
                errors: SettingsErrors::default(),
                first_time,
                preview: Some(rendered),
                min_days: settings::MIN_VALIDITY_DAYS,
                max_days: settings::MAX_VALIDITY_DAYS,
            }
            .respond_to(&req)
            .map_into_boxed_body();
            // The preview frame shows the email as a mail client would, inline styles and all.
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(super::middleware::PREVIEW_CONTENT_SECURITY_POLICY),
            );
            return Ok(response);
        }
        Err(errors) => {
            return Ok(SettingsPage {
                layout: page.layout.in_section(Section::Settings),
                input: form.input,
                errors: *errors,
                first_time,
                preview: None,
                min_days: settings::MIN_VALIDITY_DAYS,
                max_days: settings::MAX_VALIDITY_DAYS,
            }
            .customize()
            .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            .respond_to(&req)
            .map_into_boxed_body());
        }
    };
    let public_url = settings.public_url.clone();
    let first_time = state
        .ops
        .save_settings(&page.principal(&req, &state), settings)
        .await?;
    state.note_public_url(&public_url);
    if first_time {
        FlashMessage::success("Invitations are set up. You can now invite users.").send();
        Ok(see_other("/users/invite"))
    } else {
        FlashMessage::success("Invitation settings saved. New invitations use them.").send();
        Ok(see_other("/settings/invitations"))
    }
}

/// The invitation email as an invitee would get it, for a made-up invitee.
fn preview(
    settings: &InvitationSettings,
    inviter: &str,
    now: chrono::NaiveDateTime,
) -> Result<Preview, AppError> {
    let link = format!(
        "{}/enroll/EXAMPLE-LINK-FOR-PREVIEW-ONLY",
        settings.public_url
    );
    let invitee = compose::Invitee {
        first_name: "Ada",
        recipient: "ada.lovelace@example.com",
        inviter,
        link: &link,
        expires_at: now + TimeDelta::days(i64::from(settings.validity_days)),
    };
    let RenderedEmail {
        subject,
        text,
        html,
    } = compose::render_invitation(settings, &invitee, now)?;
    Ok(Preview {
        from: format!(
            "{} <{}>",
            compose::sender_display_name(settings),
            settings.sender_address
        ),
        reply_to: settings.contact_email.clone(),
        subject,
        text,
        html,
    })
}
