//! Email addresses as the organization's mail server knows them: strict, because a typo
//! sends someone else the key to the organization.

use std::fmt;

use validator::ValidateEmail;

use super::InvalidInput;

pub const MAX_EMAIL_LENGTH: usize = 254;
const MAX_LOCAL_PART_LENGTH: usize = 64;

/// A syntactically deliverable address, kept as typed (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let address = input.trim();
        if address.is_empty() {
            return Err(InvalidInput::new("Enter an email address."));
        }
        if let Some(c) = address.chars().find(|c| !c.is_ascii()) {
            return Err(InvalidInput::new(format!(
                "The address contains “{c}” (U+{:04X}), which is not a plain letter, digit or \
                 symbol. Type the address exactly as the mail server has it; an international \
                 domain must be written in its xn-- form.",
                u32::from(c)
            )));
        }
        if address.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(InvalidInput::new(
                "An email address cannot contain spaces or control characters.",
            ));
        }
        if address.len() > MAX_EMAIL_LENGTH {
            return Err(InvalidInput::new(format!(
                "An email address can be at most {MAX_EMAIL_LENGTH} characters long."
            )));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(InvalidInput::new(
                "Enter the whole address, with an @ and a domain, like name@example.com.",
            ));
        };
        if domain.contains('@') {
            return Err(InvalidInput::new(
                "Enter one email address per row: this one contains more than one @.",
            ));
        }
        if local.is_empty() || local.len() > MAX_LOCAL_PART_LENGTH || !is_dot_atom(local) {
            return Err(InvalidInput::new(
                "The part before the @ is not a valid mailbox name: use letters, digits and \
                 . _ + - (no spaces, no dot at either end, no two dots in a row).",
            ));
        }
        if !is_internet_domain(domain) {
            return Err(InvalidInput::new(
                "The part after the @ is not a valid internet domain, like example.com.",
            ));
        }
        // Cross-checked with the validator crate and with lettre, which will send to it.
        if !address.validate_email() || address.parse::<lettre::Address>().is_err() {
            return Err(InvalidInput::new("This is not a valid email address."));
        }
        Ok(Self(address.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity: two addresses with the same key are one person.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 5322 dot-atom: atext characters separated by single dots.
fn is_dot_atom(local: &str) -> bool {
    const ATEXT_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ATEXT_SYMBOLS.contains(c))
    })
}

/// A DNS name with at least two labels and an alphabetic (or punycode) top-level label.
fn is_internet_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if domain.len() > 253 || labels.len() < 2 {
        return false;
    }
    let labels_ok = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let tld = labels[labels.len() - 1];
    let tld_ok = (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        || tld.to_ascii_lowercase().starts_with("xn--");
    labels_ok && tld_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_keeps_their_case() {
        for ok in [
            "ada@example.com",
            "Ada.Lovelace@Example.COM",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "x@xn--bcher-kva.example",
        ] {
            let parsed = EmailAddress::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(parsed.as_str(), ok);
        }
        assert_eq!(
            EmailAddress::parse("  Ada@Example.com ").unwrap().key(),
            "ada@example.com"
        );
    }

    #[test]
    fn rejects_typos_and_tricks() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@example..com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example.c",
            "ada@example.123",
            "ada lovelace@example.com",
            "ada@example.com, eve@evil.com",
            "ada@example.com\r\nBcc: eve@evil.com",
            "ada@exampl\u{0435}.com",
            "ad\u{0430}@example.com",
            "ada\0@example.com",
            "\"ada\"@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn names_the_lookalike_character() {
        let err = EmailAddress::parse("ad\u{0430}@example.com").unwrap_err();
        assert!(err.to_string().contains("U+0430"), "{err}");
    }
}
