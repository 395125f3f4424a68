//! The invitee's side: open the link, see who invites them, press "Join organization".
//! Opening the page changes nothing (mail scanners prefetch links); only the POST joins.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use askama_web::WebTemplate;

use super::auth::NoFields;
use super::csrf::{CsrfForm, CsrfToken};
use super::error::AppError;
use super::request::{AppState, client_ip, see_other};
use crate::operations::TokenLookup;
use crate::principal::Principal;
use crate::time_format;
use crate::users::EnrollmentToken;
use crate::users::invitations::{EnrollOutcome, Invitee, TokenState};

/// The flash that tells the page after the redirect that this browser just joined.
const JOINED: &str = "joined";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Situation {
    Invited,
    Joined,
    AlreadyUsed,
    Expired,
    Superseded,
    NotValid,
}

#[derive(Template, WebTemplate)]
#[template(path = "enroll.html")]
struct EnrollPage {
    situation: Situation,
    csrf_token: String,
    action: String,
    organization: String,
    email: String,
    contact_email: String,
    after_join_url: String,
    expires: String,
}

impl EnrollPage {
    fn is(&self, name: &str) -> bool {
        let situation = match name {
            "invited" => Situation::Invited,
            "joined" => Situation::Joined,
            "used" => Situation::AlreadyUsed,
            "expired" => Situation::Expired,
            "superseded" => Situation::Superseded,
            _ => Situation::NotValid,
        };
        self.situation == situation
    }

    fn title(&self) -> String {
        match self.situation {
            Situation::Invited => format!("Join {}", self.organization),
            Situation::Joined => format!("You have joined {}", self.organization),
            Situation::AlreadyUsed => "This invitation has already been used".to_owned(),
            Situation::Expired => "This invitation has expired".to_owned(),
            Situation::Superseded => "A newer invitation was sent".to_owned(),
            Situation::NotValid => "This invitation link is not valid".to_owned(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.situation {
            Situation::Invited | Situation::Joined => StatusCode::OK,
            Situation::AlreadyUsed | Situation::Expired | Situation::Superseded => StatusCode::GONE,
            Situation::NotValid => StatusCode::NOT_FOUND,
        }
    }
}

fn page(
    situation: Situation,
    invitee: Option<&Invitee>,
    fallback_contact: &str,
    fallback_organization: &str,
    csrf_token: String,
    token_text: &str,
) -> EnrollPage {
    EnrollPage {
        situation,
        csrf_token,
        action: format!("/enroll/{token_text}"),
        organization: invitee
            .map_or(fallback_organization, |i| &i.organization)
            .to_owned(),
        email: invitee.map(|i| i.email.clone()).unwrap_or_default(),
        contact_email: invitee
            .map_or(fallback_contact, |i| &i.contact_email)
            .to_owned(),
        after_join_url: invitee
            .map(|i| i.after_join_url.clone())
            .unwrap_or_default(),
        expires: invitee
            .map(|i| time_format::short(i.expires_at))
            .unwrap_or_default(),
    }
}

fn situation_of(state: &TokenState, just_joined: bool) -> (Situation, Option<&Invitee>) {
    match state {
        TokenState::Valid(i) => (Situation::Invited, Some(i)),
        TokenState::Used(i) if just_joined => (Situation::Joined, Some(i)),
        TokenState::Used(i) => (Situation::AlreadyUsed, Some(i)),
        TokenState::Expired(i) => (Situation::Expired, Some(i)),
        TokenState::Superseded(i) => (Situation::Superseded, Some(i)),
        TokenState::Unknown => (Situation::NotValid, None),
    }
}

/// The state of the token in the path, and the organization's contact for pages that
/// cannot name an invitee.
async fn inspect(state: &AppState, token_text: &str) -> Result<TokenLookup, AppError> {
    let token = EnrollmentToken::parse(token_text);
    Ok(state.ops.look_up_token(token.as_ref()).await?)
}

/// A token that leads nowhere counts against the client's address; too many get 429.
fn throttle_unknown(
    req: &HttpRequest,
    state: &AppState,
    token_state: &TokenState,
) -> Result<(), AppError> {
    if *token_state != TokenState::Unknown {
        return Ok(());
    }
    state
        .limits
        .bad_token(client_ip(req, state.config.trust_proxy).as_deref())
        .map_err(|retry| AppError::TooManyRequests {
            retry_after_seconds: retry.seconds(),
        })
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    csrf: CsrfToken,
    path: web::Path<String>,
    flashes: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    let token_text = path.into_inner();
    let found = inspect(&state, &token_text).await?;
    throttle_unknown(&req, &state, &found.state)?;
    let just_joined = flashes.iter().any(|m| m.content() == JOINED);
    Ok(explain(&req, &found, just_joined, csrf, &token_text))
}

pub async fn join(
    req: HttpRequest,
    state: web::Data<AppState>,
    csrf: CsrfToken,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let token_text = path.into_inner();
    let refused = match EnrollmentToken::parse(&token_text) {
        None => TokenState::Unknown,
        Some(parsed) => {
            let principal = Principal::anonymous(client_ip(&req, state.config.trust_proxy));
            match state.ops.enroll(&principal, &parsed).await? {
                EnrollOutcome::Enrolled(_) => {
                    FlashMessage::success(JOINED).send();
                    return Ok(see_other(&format!("/enroll/{token_text}")));
                }
                EnrollOutcome::Refused(refused) => refused,
            }
        }
    };
    throttle_unknown(&req, &state, &refused)?;
    let found = TokenLookup {
        state: refused,
        ..inspect(&state, "").await?
    };
    Ok(explain(&req, &found, false, csrf, &token_text))
}

/// The page that says what this link is now good for.
fn explain(
    req: &HttpRequest,
    found: &TokenLookup,
    just_joined: bool,
    csrf: CsrfToken,
    token_text: &str,
) -> HttpResponse {
    let (situation, invitee) = situation_of(&found.state, just_joined);
    let page = page(
        situation,
        invitee,
        &found.contact_email,
        &found.organization,
        csrf.0,
        token_text,
    );
    let status = page.status();
    page.customize()
        .with_status(status)
        .respond_to(req)
        .map_into_boxed_body()
}
