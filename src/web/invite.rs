//! "Invite user": rows of First name / Last name / Email address, validated strictly and
//! saved all together or not at all.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use validator::{Validate, ValidationError, ValidationErrors};

use actix_multipart::form::MultipartForm;
use actix_multipart::form::bytes::Bytes as MultipartBytes;
use actix_multipart::form::text::Text;

use super::csrf::{self, CsrfForm};
use super::error::AppError;
use super::layout::{ConsolePage, Layout, Section};
use super::request::{AppState, see_other};
use crate::principal::Principal;
use crate::users::NewInvitee;
use crate::users::invitations::InviteOutcome;
use crate::values::{EmailAddress, InvalidInput, PersonName};

/// Rows in one submission, at most.
pub const MAX_ROWS: usize = 1000;

#[derive(Template, WebTemplate)]
#[template(path = "invite.html")]
struct InvitePage {
    layout: Layout,
    rows: Vec<RowView>,
    problem_count: usize,
    form_error: Option<String>,
    /// What happened before this form was shown (an import).
    notice: Option<String>,
    max_rows: usize,
    /// Identifies this form across re-renders, so that submitting it twice sends once.
    submission_key: String,
}

/// One row of the form as typed, with a message beside each field that is wrong.
#[derive(Default, Clone)]
struct RowView {
    /// 1-based, for element ids and the "Person N" legend.
    number: usize,
    first_name: String,
    last_name: String,
    email: String,
    first_name_error: Option<String>,
    last_name_error: Option<String>,
    email_error: Option<String>,
}

impl RowView {
    fn is_blank(&self) -> bool {
        self.first_name.trim().is_empty()
            && self.last_name.trim().is_empty()
            && self.email.trim().is_empty()
    }

    fn field_id(&self, field: &str) -> String {
        format!("{field}-{}", self.number)
    }

    fn has_error(&self) -> bool {
        self.first_name_error.is_some()
            || self.last_name_error.is_some()
            || self.email_error.is_some()
    }
}

fn numbered(mut rows: Vec<RowView>) -> Vec<RowView> {
    for (index, row) in rows.iter_mut().enumerate() {
        row.number = index + 1;
    }
    rows
}

#[derive(Validate)]
struct InviteRow<'a> {
    #[validate(custom(function = "valid_first_name"))]
    first_name: &'a str,
    #[validate(custom(function = "valid_last_name"))]
    last_name: &'a str,
    #[validate(custom(function = "valid_email"))]
    email: &'a str,
}

fn as_validation_error(error: InvalidInput) -> ValidationError {
    ValidationError::new("invalid").with_message(error.to_string().into())
}

fn valid_first_name(value: &str) -> Result<(), ValidationError> {
    PersonName::parse(value, "first name")
        .map(drop)
        .map_err(as_validation_error)
}

fn valid_last_name(value: &str) -> Result<(), ValidationError> {
    PersonName::parse(value, "last name")
        .map(drop)
        .map_err(as_validation_error)
}

fn valid_email(value: &str) -> Result<(), ValidationError> {
    EmailAddress::parse(value)
        .map(drop)
        .map_err(as_validation_error)
}

fn message_for(errors: &ValidationErrors, field: &str) -> Option<String> {
    errors.field_errors().get(field).and_then(|list| {
        list.first()
            .and_then(|e| e.message.as_ref())
            .map(|m| m.to_string())
    })
}

impl InviteRow<'_> {
    /// The domain value; only called once `validate` passed.
    fn to_invitee(&self) -> Option<NewInvitee> {
        Some(NewInvitee {
            first_name: PersonName::parse(self.first_name, "first name").ok()?,
            last_name: PersonName::parse(self.last_name, "last name").ok()?,
            email: EmailAddress::parse(self.email).ok()?,
        })
    }
}

async fn is_set_up(state: &AppState) -> Result<bool, AppError> {
    Ok(state.ops.invitation_settings().await?.is_some())
}

/// Nobody can be invited before the invitation email is set up: "Invite user" leads
/// there, saying why.
fn set_up_first() -> HttpResponse {
    FlashMessage::info(
        "Set up user invitations first. Before anyone can be invited, Enroll needs the \
         organization's name, the address invitees can write to with questions, who the \
         email comes from, and the public address that invitation links use.",
    )
    .send();
    see_other("/settings/invitations")
}

pub async fn form(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    if !is_set_up(&state).await? {
        return Ok(set_up_first());
    }
    Ok(InvitePage {
        layout: page.layout.in_section(Section::Users),
        rows: numbered(vec![RowView::default()]),
        problem_count: 0,
        form_error: None,
        notice: None,
        max_rows: MAX_ROWS,
        submission_key: uuid::Uuid::new_v4().to_string(),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default, deserialize_with = "one_row_more_than_allowed")]
    first_name: Vec<String>,
    #[serde(default, deserialize_with = "one_row_more_than_allowed")]
    last_name: Vec<String>,
    #[serde(default, deserialize_with = "one_row_more_than_allowed")]
    email: Vec<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    submission_key: String,
}

/// A repeated field's values, keeping one more than [`MAX_ROWS`] (enough to tell that
/// there were too many) and skipping the rest unread: a 2 MB body holds ~300,000
/// fields, and each kept one would become a string and then a row.
fn one_row_more_than_allowed<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Capped;

    impl<'de> serde::de::Visitor<'de> for Capped {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("form values")
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(vec![value.to_owned()])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut values: A,
        ) -> Result<Self::Value, A::Error> {
            let mut kept = Vec::new();
            while kept.len() <= MAX_ROWS {
                match values.next_element::<String>()? {
                    Some(value) => kept.push(value),
                    None => return Ok(kept),
                }
            }
            while values.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(kept)
        }
    }

    deserializer.deserialize_seq(Capped)
}

impl InviteForm {
    /// The form's idempotency key; a missing or malformed one is replaced, so that the
    /// re-rendered form still has one.
    fn submission_key(&self) -> (String, bool) {
        match uuid::Uuid::parse_str(self.submission_key.trim()) {
            Ok(key) => (key.to_string(), true),
            Err(_) => (uuid::Uuid::new_v4().to_string(), false),
        }
    }

    /// The rows as typed; a row missing a field (a hand-made request) gets it empty.
    fn rows(&self) -> Vec<RowView> {
        let count = self
            .first_name
            .len()
            .max(self.last_name.len())
            .max(self.email.len());
        let field = |values: &[String], i: usize| values.get(i).cloned().unwrap_or_default();
        (0..count)
            .map(|i| RowView {
                first_name: field(&self.first_name, i),
                last_name: field(&self.last_name, i),
                email: field(&self.email, i),
                ..RowView::default()
            })
            .collect()
    }
}

pub async fn submit(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    if !is_set_up(&state).await? {
        return Ok(set_up_first());
    }
    let principal = page.principal(&req, &state);
    let (submission_key, key_sent) = form.submission_key();
    let mut rows = form.rows();
    let render =
        |layout: Layout, rows: Vec<RowView>, form_error: Option<String>, status: StatusCode| {
            form_page(
                &req,
                layout,
                rows,
                form_error,
                None,
                status,
                &submission_key,
            )
        };
    if rows.len() > MAX_ROWS {
        rows.truncate(MAX_ROWS);
        let message = format!(
            "One submission can invite at most {MAX_ROWS} people; only the first {MAX_ROWS} rows are shown. Send them, then invite the rest."
        );
        return Ok(render(
            page.layout,
            rows,
            Some(message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    if form.action == "add_row" {
        if rows.len() < MAX_ROWS {
            rows.push(RowView::default());
        }
        return Ok(render(page.layout, rows, None, StatusCode::OK));
    }
    // Rows left completely empty (an extra "Add another user") are dropped, not errors.
    rows.retain(|row| !row.is_blank());
    if rows.is_empty() {
        return Ok(render(
            page.layout,
            vec![RowView::default()],
            Some("Fill in at least one person to invite.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let invitees = check_rows(&state, &principal, &mut rows).await?;
    // Asked only now: addresses the check found taken may be this very form's, sent a
    // moment ago (a double click), and its key was committed with them.
    if key_sent
        && state
            .ops
            .was_submitted(&principal, submission_key.clone())
            .await?
    {
        return Ok(already_submitted());
    }
    if rows.iter().any(RowView::has_error) {
        return Ok(render(
            page.layout,
            rows,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let outcome = state
        .ops
        .invite(
            &principal,
            invitees,
            key_sent.then(|| submission_key.clone()),
        )
        .await;
    let outcome = match outcome {
        // Settings removed meanwhile cannot happen (they are never deleted); still,
        // say it the way the form does.
        Err(crate::error::Error::NotSetUp) => return Ok(set_up_first()),
        other => other?,
    };
    match outcome {
        InviteOutcome::Invited(links) => {
            let count = links.len();
            FlashMessage::success(if count == 1 {
                format!("Invitation on its way to {}.", links[0].recipient)
            } else {
                format!("Invitations on their way to {count} users.")
            })
            .send();
            Ok(see_other("/users"))
        }
        InviteOutcome::AlreadySubmitted => Ok(already_submitted()),
        InviteOutcome::AlreadyInvited(keys) => {
            mark_existing(&mut rows, &keys);
            Ok(render(
                page.layout,
                rows,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    }
}

/// The invite form with these rows, numbered, and a summary of their problems.
fn form_page(
    req: &HttpRequest,
    layout: Layout,
    rows: Vec<RowView>,
    form_error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
    submission_key: &str,
) -> HttpResponse {
    let rows = numbered(rows);
    let problem_count = rows.iter().filter(|r| r.has_error()).count();
    InvitePage {
        layout: layout.in_section(Section::Users),
        rows,
        problem_count,
        form_error,
        notice,
        max_rows: MAX_ROWS,
        submission_key: submission_key.to_owned(),
    }
    .customize()
    .with_status(status)
    .respond_to(req)
    .map_into_boxed_body()
}

/// Validates the rows and marks addresses that already belong to users; returns the
/// invitees of the rows that are right.
async fn check_rows(
    state: &AppState,
    principal: &Principal,
    rows: &mut [RowView],
) -> Result<Vec<NewInvitee>, AppError> {
    let invitees = validate_rows(rows);
    let keys: Vec<String> = invitees.iter().map(|i| i.email.key()).collect();
    let existing = state.ops.addresses_in_use(principal, keys).await?;
    mark_existing(rows, &existing);
    Ok(invitees)
}

#[derive(MultipartForm)]
pub struct ImportForm {
    csrf_token: Option<Text<String>>,
    submission_key: Option<Text<String>>,
    #[multipart(limit = "2MB")]
    file: Option<MultipartBytes>,
}

/// "Import from CSV": fills the form with the file's people, each row checked like a
/// typed one; nothing is sent until "Send invite".
pub async fn import(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    MultipartForm(form): MultipartForm<ImportForm>,
) -> Result<HttpResponse, AppError> {
    csrf::verify(&req, form.csrf_token.as_ref().map_or("", |t| t.0.as_str()))?;
    page.require_administrator()?;
    if !is_set_up(&state).await? {
        return Ok(set_up_first());
    }
    let submission_key = form
        .submission_key
        .and_then(|key| uuid::Uuid::parse_str(key.0.trim()).ok())
        .unwrap_or_else(uuid::Uuid::new_v4)
        .to_string();
    let refuse = |layout: Layout, message: String| {
        form_page(
            &req,
            layout,
            vec![RowView::default()],
            Some(message),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            &submission_key,
        )
    };
    let Some(file) = form.file.filter(|f| !f.data.is_empty()) else {
        return Ok(refuse(
            page.layout,
            "Choose a CSV file to import.".to_owned(),
        ));
    };
    let imported = match crate::users::csv::parse(&file.data, MAX_ROWS) {
        Ok(rows) if rows.is_empty() => {
            return Ok(refuse(
                page.layout,
                "The file has a header row but nobody in it.".to_owned(),
            ));
        }
        Ok(rows) => rows,
        Err(error) => return Ok(refuse(page.layout, error.to_string())),
    };
    let mut rows: Vec<RowView> = imported
        .into_iter()
        .map(|row| RowView {
            first_name: row.first_name,
            last_name: row.last_name,
            email: row.email,
            ..RowView::default()
        })
        .collect();
    check_rows(&state, &page.principal(&req, &state), &mut rows).await?;
    let name = file
        .file_name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "the file".to_owned());
    let notice = format!(
        "{} read from {name}. Nothing has been sent: check the rows, then press Send invite.",
        if rows.len() == 1 {
            "1 person".to_owned()
        } else {
            format!("{} people", rows.len())
        }
    );
    Ok(form_page(
        &req,
        page.layout,
        rows,
        None,
        Some(notice),
        StatusCode::OK,
        &submission_key,
    ))
}

/// A form sent twice (a double click, a second tab): the first one did the work.
fn already_submitted() -> HttpResponse {
    FlashMessage::info(
        "This form was already sent, so nothing more was done: the invitations went out once.",
    )
    .send();
    see_other("/users")
}

/// Validates every row (messages go beside the fields) and looks for an address typed
/// twice. Returns the invitees of the rows that are right.
fn validate_rows(rows: &mut [RowView]) -> Vec<NewInvitee> {
    let mut invitees = Vec::with_capacity(rows.len());
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    for (index, row) in rows.iter_mut().enumerate() {
        let candidate = InviteRow {
            first_name: &row.first_name,
            last_name: &row.last_name,
            email: &row.email,
        };
        if let Err(errors) = candidate.validate() {
            row.first_name_error = message_for(&errors, "first_name");
            row.last_name_error = message_for(&errors, "last_name");
            row.email_error = message_for(&errors, "email");
            continue;
        }
        let Some(invitee) = candidate.to_invitee() else {
            continue;
        };
        match first_row_of.get(&invitee.email.key()) {
            Some(first) => {
                row.email_error = Some(format!(
                    "This address is already in row {}. Each person is invited once.",
                    first + 1
                ));
            }
            None => {
                first_row_of.insert(invitee.email.key(), index);
                invitees.push(invitee);
            }
        }
    }
    invitees
}

fn mark_existing(rows: &mut [RowView], existing_keys: &[String]) {
    for row in rows.iter_mut() {
        let key = EmailAddress::parse(&row.email).map(|email| email.key());
        if key.is_ok_and(|key| existing_keys.contains(&key)) {
            row.email_error = Some(
                "This address already belongs to a user. To send them a new link, select them \
                 on the Users page and use Resend invitation."
                    .to_owned(),
            );
        }
    }
}
