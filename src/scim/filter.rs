//! SCIM filters (RFC 7644 §3.4.2.2), the subset identity providers send: `eq` on
//! `userName`, `externalId`, `emails.value` or `emails[type eq "work"].value`, joined
//! with `and`. Anything else is refused as `invalidFilter`, never guessed at.

use super::paths::{AttributePath, parse_path};

/// What a list of users is narrowed to; every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Lower-cased: `userName` and the address compare case-insensitively.
    pub email_key: Option<String>,
    /// Compared exactly (`caseExact` in the schema).
    pub external_id: Option<String>,
    /// Two different addresses asked for at once: nothing can match.
    pub impossible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFilter(pub String);

impl std::fmt::Display for InvalidFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
}

const MAX_FILTER_CHARS: usize = 1000;

fn tokens(input: &str) -> Result<Vec<Token>, InvalidFilter> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            // A JSON string: read up to the closing quote, then let serde_json unescape.
            let mut raw = String::from('"');
            let mut closed = false;
            while let Some(c) = chars.next() {
                raw.push(c);
                if c == '\\' {
                    match chars.next() {
                        Some(next) => raw.push(next),
                        None => break,
                    }
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(InvalidFilter("a quoted value is not closed".to_owned()));
            }
            let text: String = serde_json::from_str(&raw)
                .map_err(|_| InvalidFilter("a quoted value is not a valid string".to_owned()))?;
            out.push(Token::Text(text));
        } else {
            let mut word = String::new();
            let mut depth = 0usize;
            // A path may hold a bracketed value filter with spaces and quotes in it.
            while let Some(&c) = chars.peek() {
                if depth == 0 && c.is_whitespace() {
                    break;
                }
                match c {
                    '[' => depth += 1,
                    ']' => depth = depth.saturating_sub(1),
                    '"' if depth == 0 => break,
                    _ => {}
                }
                word.push(c);
                chars.next();
            }
            out.push(Token::Word(word));
        }
    }
    Ok(out)
}

/// Parses `filter` into the conditions it sets.
pub fn parse(filter: &str) -> Result<UserFilter, InvalidFilter> {
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(InvalidFilter("the filter is too long".to_owned()));
    }
    let tokens = tokens(filter)?;
    if tokens.is_empty() {
        return Err(InvalidFilter("the filter is empty".to_owned()));
    }
    let mut result = UserFilter::default();
    let mut rest = tokens.as_slice();
    loop {
        let [Token::Word(path), Token::Word(op), value, tail @ ..] = rest else {
            return Err(InvalidFilter(
                "expected `attribute eq \"value\"` (joined with `and`)".to_owned(),
            ));
        };
        if !op.eq_ignore_ascii_case("eq") {
            return Err(InvalidFilter(format!("only `eq` is supported, not `{op}`")));
        }
        let Token::Text(value) = value else {
            return Err(InvalidFilter(
                "compare with a quoted string, such as \"ada@example.com\"".to_owned(),
            ));
        };
        // No stored value has them, and PostgreSQL refuses NUL in text.
        if value.chars().any(char::is_control) {
            return Err(InvalidFilter(
                "a value cannot contain control characters".to_owned(),
            ));
        }
        match parse_path(path).map_err(InvalidFilter)? {
            AttributePath::UserName | AttributePath::EmailValue => {
                let key = value.to_lowercase();
                match &result.email_key {
                    Some(existing) if *existing != key => result.impossible = true,
                    _ => result.email_key = Some(key),
                }
            }
            AttributePath::ExternalId => match &result.external_id {
                Some(existing) if existing != value => result.impossible = true,
                _ => result.external_id = Some(value.clone()),
            },
            other => {
                return Err(InvalidFilter(format!(
                    "filtering on {} is not supported; use userName, externalId or emails.value",
                    other.name()
                )));
            }
        }
        match tail {
            [] => return Ok(result),
            [Token::Word(and), more @ ..]
                if and.eq_ignore_ascii_case("and") && !more.is_empty() =>
            {
                rest = more;
            }
            _ => {
                return Err(InvalidFilter(
                    "conditions can only be joined with `and`".to_owned(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_identity_providers_send_is_understood() {
        let okta = parse(r#"userName eq "Ada@Example.com""#).unwrap();
        assert_eq!(okta.email_key.as_deref(), Some("ada@example.com"));
        let entra = parse(r#"externalId eq "0e1f-A""#).unwrap();
        assert_eq!(entra.external_id.as_deref(), Some("0e1f-A"));
        let work = parse(r#"emails[type eq "work"].value eq "a@b.c""#).unwrap();
        assert_eq!(work.email_key.as_deref(), Some("a@b.c"));
        let both = parse(r#"USERNAME EQ "a@b.c" AND externalId eq "x\"y""#).unwrap();
        assert_eq!(both.external_id.as_deref(), Some("x\"y"));
        assert!(
            parse(r#"userName eq "a@b.c" and emails.value eq "d@e.f""#)
                .unwrap()
                .impossible
        );
        let urn = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@b.c""#);
        assert!(urn.is_ok());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "userName",
            r#"userName sw "a""#,
            r#"userName eq "a" or externalId eq "b""#,
            r#"name.givenName eq "Ada""#,
            r#"userName eq true"#,
            r#"userName eq "unterminated"#,
            r#"(userName eq "a")"#,
            r#"userName eq "a" and"#,
            r#"emails[type eq "home"].value eq "a""#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"externalId eq "a\u0000b""#,
            "userName eq \"a\nb\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&"a".repeat(5000)).is_err());
    }
}
