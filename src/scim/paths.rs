//! Attribute paths as filters and PATCH operations name them: `userName`,
//! `name.givenName`, `emails[type eq "work"].value`, with or without the schema's URN,
//! in any letter case (attribute names are case-insensitive, RFC 7643 §2.1).

use super::{CORE_USER_SCHEMA, ENROLLMENT_SCHEMA, ENTERPRISE_USER_SCHEMA};

/// Attributes of RFC 7643's User (and its enterprise extension) that Enroll does not
/// keep: accepted and ignored, since identity providers send them whatever is mapped
/// (Entra sends `title`, `preferredLanguage`, `displayName`...). An attribute in no
/// schema is refused instead: it is a typo or a client bug.
const IGNORED_CORE: [&str; 17] = [
    "displayname",
    "nickname",
    "profileurl",
    "title",
    "usertype",
    "preferredlanguage",
    "locale",
    "timezone",
    "password",
    "phonenumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509certificates",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributePath {
    UserName,
    ExternalId,
    Active,
    /// The whole `name` complex attribute.
    Name,
    GivenName,
    FamilyName,
    /// `emails` as a whole.
    Emails,
    /// The address: `emails.value`, `emails[type eq "work"].value`,
    /// `emails[primary eq true].value`.
    EmailValue,
    /// Attributes the service provider sets: `id`, `meta`, the enrollment extension.
    ReadOnly(&'static str),
    /// Standard attributes Enroll does not keep (see [`IGNORED_CORE`]).
    Ignored,
}

impl AttributePath {
    pub fn name(self) -> &'static str {
        match self {
            Self::UserName => "userName",
            Self::ExternalId => "externalId",
            Self::Active => "active",
            Self::Name => "name",
            Self::GivenName => "name.givenName",
            Self::FamilyName => "name.familyName",
            Self::Emails => "emails",
            Self::EmailValue => "emails.value",
            Self::ReadOnly(name) => name,
            Self::Ignored => "an attribute Enroll does not keep",
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The value filter inside `emails[...]`: only the one address's own traits.
fn email_selector_is_supported(selector: &str) -> bool {
    let words: Vec<&str> = selector.split_whitespace().collect();
    match words.as_slice() {
        [attr, op, value] if op.eq_ignore_ascii_case("eq") => {
            (attr.eq_ignore_ascii_case("type") && value.eq_ignore_ascii_case("\"work\""))
                || (attr.eq_ignore_ascii_case("primary") && value.eq_ignore_ascii_case("true"))
        }
        _ => false,
    }
}

pub fn parse_path(raw: &str) -> Result<AttributePath, String> {
    let raw = raw.trim();
    if let Some(rest) = strip_prefix_ignore_case(raw, ENROLLMENT_SCHEMA) {
        return match rest {
            // The extension as a whole holds only read-only attributes: a write of it
            // changes nothing (RFC 7644 §3.5.2: read-only values are ignored).
            "" => Ok(AttributePath::Ignored),
            _ if rest.starts_with(':') => Ok(AttributePath::ReadOnly("enrollment extension")),
            _ => Err(format!("unknown attribute `{raw}`")),
        };
    }
    if let Some(rest) = strip_prefix_ignore_case(raw, ENTERPRISE_USER_SCHEMA)
        && (rest.is_empty() || rest.starts_with(':'))
    {
        return Ok(AttributePath::Ignored);
    }
    let path = match strip_prefix_ignore_case(raw, CORE_USER_SCHEMA) {
        Some(rest) => rest
            .strip_prefix(':')
            .ok_or_else(|| format!("unknown attribute `{raw}`"))?,
        None => raw,
    };
    let (head, selector, tail) = match path.split_once('[') {
        Some((head, rest)) => {
            let (selector, tail) = rest
                .split_once(']')
                .ok_or_else(|| format!("unclosed `[` in `{raw}`"))?;
            (head, Some(selector), tail)
        }
        None => match path.split_once('.') {
            Some((head, _)) => (head, None, &path[head.len()..]),
            None => (path, None, ""),
        },
    };
    let sub = match tail {
        "" => None,
        _ => Some(
            tail.strip_prefix('.')
                .ok_or_else(|| format!("unknown attribute `{raw}`"))?,
        ),
    };
    let lower = head.to_ascii_lowercase();
    let sub_lower = sub.map(str::to_ascii_lowercase);
    let path = match (lower.as_str(), selector, sub_lower.as_deref()) {
        ("username", None, None) => AttributePath::UserName,
        ("externalid", None, None) => AttributePath::ExternalId,
        ("active", None, None) => AttributePath::Active,
        ("name", None, None) => AttributePath::Name,
        ("name", None, Some("givenname")) => AttributePath::GivenName,
        ("name", None, Some("familyname")) => AttributePath::FamilyName,
        ("emails", None, None) => AttributePath::Emails,
        ("emails", None, Some("value")) => AttributePath::EmailValue,
        ("emails", Some(selector), Some("value")) if email_selector_is_supported(selector) => {
            AttributePath::EmailValue
        }
        ("emails", Some(_), _) => {
            return Err(format!(
                "`{raw}`: only emails[type eq \"work\"] and emails[primary eq true] exist here"
            ));
        }
        (
            "name",
            None,
            Some("formatted" | "middlename" | "honorificprefix" | "honorificsuffix"),
        ) => AttributePath::Ignored,
        (other, _, _) if IGNORED_CORE.contains(&other) => AttributePath::Ignored,
        ("id", None, None) => AttributePath::ReadOnly("id"),
        ("meta", None, _) => AttributePath::ReadOnly("meta"),
        ("schemas", None, None) => AttributePath::ReadOnly("schemas"),
        _ => return Err(format!("unknown attribute `{raw}`")),
    };
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_clients_write_them() {
        use AttributePath::*;
        for (raw, expected) in [
            ("userName", UserName),
            ("USERNAME", UserName),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                UserName,
            ),
            ("name.givenName", GivenName),
            ("name.FamilyName", FamilyName),
            ("emails[type eq \"work\"].value", EmailValue),
            ("emails[primary eq true].value", EmailValue),
            ("emails.value", EmailValue),
            ("externalId", ExternalId),
            ("active", Active),
            ("name", Name),
            ("displayName", Ignored),
            ("name.formatted", Ignored),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                Ignored,
            ),
            ("phoneNumbers[type eq \"work\"].value", Ignored),
        ] {
            assert_eq!(parse_path(raw), Ok(expected), "{raw}");
        }
        for bad in [
            "name.nickName",
            "favouriteColour",
            "emails[type eq \"home\"].value",
            "emails[type eq \"work\"",
            "urn:ietf:params:scim:schemas:core:2.0:UserX",
            "",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
