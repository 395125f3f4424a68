//! People's names: free text in any script, but nothing that could disguise or break
//! what is shown or sent.

use std::fmt;

use super::InvalidInput;

pub const MAX_NAME_LENGTH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// `what` names the field in messages ("first name", "last name").
    pub fn parse(input: &str, what: &str) -> Result<Self, InvalidInput> {
        let name = input.trim();
        if name.is_empty() {
            return Err(InvalidInput::new(format!("Enter a {what}.")));
        }
        if name.chars().count() > MAX_NAME_LENGTH {
            return Err(InvalidInput::new(format!(
                "A {what} can be at most {MAX_NAME_LENGTH} characters long."
            )));
        }
        if let Some(c) = name.chars().find(|&c| is_disallowed(c)) {
            return Err(InvalidInput::new(format!(
                "The {what} contains an invisible or control character (U+{:04X}); \
                 type it again without it.",
                u32::from(c)
            )));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Control characters (line breaks, NUL...) and the invisible formatting characters used
/// to reorder or hide text (bidirectional overrides, zero-width characters).
pub fn is_disallowed(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_in_any_script() {
        for ok in [
            "Ada",
            "O'Brien",
            "Jean-Luc",
            "Zoë",
            "李",
            "Müller-Lüdenscheidt",
            "<b>Bob</b>",
        ] {
            assert_eq!(PersonName::parse(ok, "first name").unwrap().as_str(), ok);
        }
        assert_eq!(
            PersonName::parse("  Ada  ", "first name").unwrap().as_str(),
            "Ada"
        );
    }

    #[test]
    fn rejects_blank_long_and_hidden_characters() {
        assert!(PersonName::parse("   ", "first name").is_err());
        assert!(PersonName::parse(&"a".repeat(101), "first name").is_err());
        assert!(PersonName::parse(&"é".repeat(100), "first name").is_ok());
        for bad in [
            "Ada\r\nBcc: x",
            "Ada\0",
            "Ada\u{202E}",
            "A\u{200B}da",
            "A\tda",
        ] {
            assert!(
                PersonName::parse(bad, "first name").is_err(),
                "accepted {bad:?}"
            );
        }
        let message = PersonName::parse("", "last name").unwrap_err().to_string();
        assert_eq!(message, "Enter a last name.");
    }
}
