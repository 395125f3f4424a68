//! "Audit log" (administrators only): who did what to whom, newest first.

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use askama::Template;
use askama_web::WebTemplate;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::layout::{ConsolePage, Layout, Section};
use super::request::AppState;
use crate::audit::{Action, AuditQuery};
use crate::time_format;
use crate::web::error::AppError;

const PER_PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditParams {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    before: String,
}

struct EventView {
    when: String,
    when_machine: String,
    actor: String,
    action: &'static str,
    subject: String,
    detail: String,
    client_ip: String,
}

struct ActionOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    events: Vec<EventView>,
    actions: Vec<ActionOption>,
    actor: String,
    subject: String,
    older_url: Option<String>,
    filtered: bool,
}

/// The position after a row: its time and id, opaque in the URL.
fn encode_position(at: chrono::NaiveDateTime, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\u{1f}{id}", time_format::machine_precise(at)))
}

fn decode_position(text: &str) -> Option<(chrono::NaiveDateTime, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once('\u{1f}')?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.naive_utc();
    // The URL is the client's to edit: only a real id reaches the query.
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some((at, id.to_string()))
}

pub async fn list(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let query = AuditQuery {
        action: Action::parse(&params.action),
        actor: super::request::plain_text(&params.actor, 200),
        subject: super::request::plain_text(&params.subject, 200),
        before: decode_position(&params.before),
        per_page: PER_PAGE,
    };
    let (rows, more) = state
        .ops
        .audit_page(&page.principal(&req, &state), query.clone())
        .await?;
    let older_url = more.then(|| {
        let last = rows
            .last()
            .map(|r| encode_position(r.occurred_at, &r.id))
            .unwrap_or_default();
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if let Some(action) = query.action {
            url.append_pair("action", action.as_str());
        }
        if !query.actor.is_empty() {
            url.append_pair("actor", &query.actor);
        }
        if !query.subject.is_empty() {
            url.append_pair("subject", &query.subject);
        }
        url.append_pair("before", &last);
        format!("/audit?{}", url.finish())
    });
    let events = rows
        .into_iter()
        .map(|row| {
            let action = Action::parse(&row.action);
            // Without an account, the one acting is the invitee joining, or a visitor.
            let nobody = if action == Some(Action::Enroll) {
                "invitee"
            } else {
                "anonymous"
            };
            EventView {
                when: time_format::short(row.occurred_at),
                when_machine: time_format::machine(row.occurred_at),
                actor: row.actor_email.unwrap_or_else(|| nobody.to_owned()),
                action: action.map_or("Unknown", Action::label),
                subject: row.subject_email.unwrap_or_default(),
                detail: row.detail,
                client_ip: row.client_ip.unwrap_or_default(),
            }
        })
        .collect();
    Ok(AuditPage {
        layout: page.layout.in_section(Section::Audit),
        events,
        actions: Action::ALL
            .into_iter()
            .map(|action| ActionOption {
                value: action.as_str(),
                label: action.label(),
                selected: query.action == Some(action),
            })
            .collect(),
        filtered: query.action.is_some() || !query.actor.is_empty() || !query.subject.is_empty(),
        actor: query.actor,
        subject: query.subject,
        older_url,
    }
    .respond_to(&req)
    .map_into_boxed_body())
}
