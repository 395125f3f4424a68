//! The web layer's error: each variant maps to a status code and a page, and unexpected
//! ones are logged with their whole cause chain. The one place where the domain's and
//! the database's errors become pages.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("sign-in required")]
    NotSignedIn { return_to: String },
    #[error("your role does not allow this")]
    Forbidden,
    #[error("the form expired or did not come from this console")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("too many attempts")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("the database is busy")]
    Unavailable(#[source] DbError),
    #[error("a read ran past its deadline")]
    TooSlow,
    #[error("too many expensive reads at once")]
    Busy,
    #[error("database error")]
    Database(#[source] DbError),
    #[error("cannot render a template")]
    Template(#[from] askama::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Retry-After of a refused expensive read: searches take milliseconds, so slots free
/// up quickly.
const BUSY_RETRY_AFTER_SECONDS: u64 = 2;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
}

impl AppError {
    fn page(&self) -> (&'static str, String) {
        match self {
            Self::NotSignedIn { .. } => ("Sign in", "Sign in to continue.".to_owned()),
            Self::Forbidden => (
                "Not allowed",
                "Your role does not allow this action. Ask an administrator if you need it."
                    .to_owned(),
            ),
            Self::Csrf => (
                "Form expired",
                "This form expired or did not come from this console, so nothing was changed. \
                 Go back, reload the page and try again."
                    .to_owned(),
            ),
            Self::NotFound => (
                "Page not found",
                "There is nothing at this address. Check the link, or start again from Users."
                    .to_owned(),
            ),
            Self::BadRequest(message) => ("Bad request", message.clone()),
            Self::TooManyRequests { .. } => (
                "Too many attempts",
                "Too many attempts from here. Wait a minute, then try again.".to_owned(),
            ),
            Self::TooSlow => (
                "This took too long",
                "This search took too long and was stopped. Narrow it: type more of the name \
                 or address, or choose a status."
                    .to_owned(),
            ),
            Self::Busy => (
                "Busy",
                "The console is answering many searches right now. Try again in a few seconds."
                    .to_owned(),
            ),
            Self::Database(_) | Self::Unavailable(_) | Self::Template(_) | Self::Unexpected(_) => (
                "Something went wrong",
                "Something went wrong on our side and nothing was changed. Try again in a \
                 moment; if it keeps happening, tell your administrator."
                    .to_owned(),
            ),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotSignedIn { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::TooSlow | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Template(_) | Self::Unexpected(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?crate::error::chain(self), "request failed");
        }
        if let Self::NotSignedIn { return_to } = self {
            let location = if return_to.is_empty() || return_to == "/" {
                "/login".to_owned()
            } else {
                format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
                )
            };
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        let (title, message) = self.page();
        let body = ErrorPage {
            title,
            message: &message,
            status: status.as_u16(),
        }
        .render()
        .unwrap_or_else(|_| format!("{title}: {message}"));
        let mut response = HttpResponse::build(status);
        response.insert_header(ContentType::html());
        if let Self::TooManyRequests {
            retry_after_seconds,
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
        }
        if let Self::Busy = self {
            response.insert_header((header::RETRY_AFTER, BUSY_RETRY_AFTER_SECONDS.to_string()));
        }
        response.body(body)
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Unexpected(anyhow::anyhow!("blocking task failed: {error}"))
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            // No connection free, or SQLite stayed locked past the busy timeout: the
            // transaction was rolled back, so trying again later is safe (a resubmitted
            // form is recognised as such).
            DbError::Pool(_) | DbError::PastDeadline => Self::Unavailable(error),
            DbError::TooSlow => Self::TooSlow,
            DbError::Busy => Self::Busy,
            DbError::Query(ref e) if crate::metrics::is_sqlite_busy(e) => Self::Unavailable(error),
            other => Self::Database(other),
        }
    }
}

impl From<crate::error::Error> for AppError {
    fn from(error: crate::error::Error) -> Self {
        use crate::error::Error;
        match error {
            Error::NotFound => Self::NotFound,
            Error::Forbidden => Self::Forbidden,
            Error::NotSetUp => Self::BadRequest("Set up user invitations first.".to_owned()),
            Error::Invalid(message) => Self::BadRequest(message.to_string()),
            Error::Database(error) => error.into(),
            Error::Unexpected(error) => Self::Unexpected(error),
        }
    }
}
