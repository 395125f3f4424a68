//! The users & invitations domain: types that validate on construction, the status
//! rules, and the queries that invite, resend, remove and enroll.

pub mod api_search;
pub mod counts;
pub mod csv;
pub mod history;
pub mod invitations;
pub mod list;
pub mod search_index;
pub mod status;
pub mod tags;
pub mod token;

pub use crate::values::{EmailAddress, InvalidInput, PersonName};
pub use status::EnrollmentStatus;
pub use token::EnrollmentToken;

/// Someone to invite, every part valid.
#[derive(Debug, Clone)]
pub struct NewInvitee {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub email: EmailAddress,
}

impl NewInvitee {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// What a user is called in messages: "Ada Lovelace <ada@example.com>".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLabel {
    pub name: String,
    pub email: String,
}

impl std::fmt::Display for UserLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// Lower-cased keys for sorting and searching; kept beside the values they come from.
pub fn name_key(first_name: &str, last_name: &str) -> String {
    format!("{} {}", last_name.to_lowercase(), first_name.to_lowercase())
}

pub fn search_key(first_name: &str, last_name: &str, email: &str) -> String {
    format!(
        "{} {} {}",
        first_name.to_lowercase(),
        last_name.to_lowercase(),
        email.to_lowercase()
    )
}
