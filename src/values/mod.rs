//! Values that every part of the domain takes from people and checks the same way:
//! email addresses, names, and the message for input that cannot be accepted. A leaf:
//! it depends on nothing else in the crate.

pub mod email;
pub mod name;

use std::borrow::Cow;

pub use email::EmailAddress;
pub use name::PersonName;

/// A message for the person who typed something we cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(Cow<'static, str>);

impl InvalidInput {
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self(message.into())
    }
}
