//! The domain's error: what an operation can refuse, and what can fail beneath it. The
//! web layer (and any other front door) decides how each one is shown.

use crate::db::DbError;
use crate::values::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such thing")]
    NotFound,
    #[error("the acting role does not allow this")]
    Forbidden,
    #[error("invitations are not set up yet")]
    NotSetUp,
    #[error("{0}")]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(DbError::Query(error))
    }
}

impl From<askama::Error> for Error {
    fn from(error: askama::Error) -> Self {
        Self::Unexpected(anyhow::Error::new(error).context("cannot write an email"))
    }
}

impl Error {
    /// Whether a unique index refused the write (an address invited twice at once).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(DbError::Query(e)) if crate::db::is_unique_violation(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "database error: no such table: users": an error and every cause below it, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
