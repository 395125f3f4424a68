//! One user's page: their status and the history of their invitation.

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use askama::Template;
use askama_web::WebTemplate;

use super::UserView;
use crate::time_format;
use crate::users::history::Tone;
use crate::web::error::AppError;
use crate::web::layout::{ConsolePage, Layout, Section};
use crate::web::request::AppState;

struct EntryView {
    when: String,
    when_machine: String,
    title: String,
    detail: String,
    css_class: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    user: UserView,
    entries: Vec<EntryView>,
    /// Key and value of each tag, by key.
    tags: Vec<(String, String)>,
}

/// One user's page: their status and the history of their invitation. Both roles see
/// it; it never shows a link or a token.
pub async fn history(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = crate::web::request::path_id(&path.into_inner())?;
    let now = state.clock.now();
    let (user, entries, tags) = state
        .ops
        .user_history(&page.principal(&req, &state), id, now)
        .await?;
    let entries = entries
        .into_iter()
        .map(|entry| EntryView {
            when: time_format::short(entry.at),
            when_machine: time_format::machine(entry.at),
            title: entry.title,
            detail: entry.detail,
            css_class: match entry.tone {
                Tone::Good => "timeline-entry timeline-good",
                Tone::Bad => "timeline-entry timeline-bad",
                Tone::Neutral => "timeline-entry",
            },
        })
        .collect();
    Ok(UserPage {
        layout: page.layout.in_section(Section::Users),
        user: UserView::new(&user, now),
        entries,
        tags: tags
            .iter()
            .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
            .collect(),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}
