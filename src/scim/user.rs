//! The User resource: what POST and PUT bodies may carry (checked with the invite form's
//! own rules), and how a user is written back, with `attributes`/`excludedAttributes`.

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use super::paths::{AttributePath, parse_path};
use super::{CORE_USER_SCHEMA, ENROLLMENT_SCHEMA, ENTERPRISE_USER_SCHEMA, ScimError};
use crate::values::{EmailAddress, PersonName};

/// Longest `externalId` kept (identity providers use GUIDs and short ids).
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// A user as a request describes it, once every rule holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub external_id: Option<String>,
    pub active: bool,
}

/// A user being put together from a body or from PATCH operations; checked by
/// [`Draft::finish`].
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub user_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Addresses given in `emails`: each must be the userName.
    pub emails: Vec<String>,
    pub external_id: Option<String>,
    pub active: Option<bool>,
}

fn string(value: &Value, what: &str) -> Result<String, ScimError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        _ => Err(ScimError::invalid_value(format!("{what} must be a string"))),
    }
}

/// `true`, or Entra's `"True"`.
pub fn boolean(value: &Value, what: &str) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "{what} must be true or false"
        ))),
    }
}

/// The addresses in an `emails` value: a list of `{value, type, primary}`, one such
/// object, or (for `emails[...].value` paths) a bare string.
fn addresses(value: &Value) -> Result<Vec<String>, ScimError> {
    let one = |item: &Value| -> Result<Option<String>, ScimError> {
        match item {
            Value::String(text) => Ok(Some(text.clone())),
            Value::Object(fields) => {
                for key in fields.keys() {
                    if !["value", "type", "primary", "display"]
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(key))
                    {
                        return Err(ScimError::invalid_syntax(format!(
                            "emails has no sub-attribute `{key}`"
                        )));
                    }
                }
                let value = fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                    .map(|(_, v)| string(v, "emails.value"))
                    .transpose()?;
                Ok(value)
            }
            _ => Err(ScimError::invalid_value(
                "emails must be a list of addresses",
            )),
        }
    };
    match value {
        Value::Array(items) => Ok(items
            .iter()
            .map(one)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect()),
        Value::Null => Ok(Vec::new()),
        other => Ok(one(other)?.into_iter().collect()),
    }
}

impl Draft {
    /// Sets one attribute (an `add` or `replace`, or a key of a POST/PUT body).
    pub fn set(&mut self, path: AttributePath, value: &Value) -> Result<(), ScimError> {
        match path {
            AttributePath::UserName => self.user_name = Some(string(value, "userName")?),
            AttributePath::GivenName => {
                self.given_name = Some(string(value, "name.givenName")?);
            }
            AttributePath::FamilyName => {
                self.family_name = Some(string(value, "name.familyName")?);
            }
            AttributePath::Name => {
                let Value::Object(fields) = value else {
                    return Err(ScimError::invalid_value("name must be an object"));
                };
                for (key, sub) in fields {
                    let sub_path =
                        parse_path(&format!("name.{key}")).map_err(ScimError::invalid_syntax)?;
                    match sub_path {
                        AttributePath::GivenName | AttributePath::FamilyName => {
                            self.set(sub_path, sub)?;
                        }
                        // name.formatted is written by Enroll; the rest is not kept.
                        _ => {}
                    }
                }
            }
            AttributePath::Emails | AttributePath::EmailValue => {
                self.emails = addresses(value)?;
            }
            AttributePath::ExternalId => {
                self.external_id = match value {
                    Value::Null => None,
                    other => Some(string(other, "externalId")?),
                };
            }
            AttributePath::Active => self.active = Some(boolean(value, "active")?),
            // Written by Enroll (ignored in a body, as RFC 7644 §3.3 says), or not kept.
            AttributePath::ReadOnly(_) | AttributePath::Ignored => {}
        }
        Ok(())
    }

    /// A POST or PUT body.
    pub fn from_body(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(fields) = body else {
            return Err(ScimError::invalid_syntax("the body must be a JSON object"));
        };
        check_schemas(fields)?;
        let mut draft = Self::default();
        for (key, value) in fields {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let path = parse_path(key).map_err(ScimError::invalid_syntax)?;
            draft.set(path, value)?;
        }
        Ok(draft)
    }

    /// Checks every rule; a rule broken is a 400 `invalidValue` saying which.
    pub fn finish(self) -> Result<UserInput, ScimError> {
        let user_name = self
            .user_name
            .ok_or_else(|| ScimError::invalid_value("userName (the email address) is required"))?;
        let email = EmailAddress::parse(&user_name)
            .map_err(|e| ScimError::invalid_value(format!("userName: {e}")))?;
        for address in &self.emails {
            if !address.trim().eq_ignore_ascii_case(email.as_str()) {
                return Err(ScimError::invalid_value(
                    "emails: the address must be the userName; Enroll keeps one address per user",
                ));
            }
        }
        let first_name = PersonName::parse(
            self.given_name
                .as_deref()
                .ok_or_else(|| ScimError::invalid_value("name.givenName is required"))?,
            "first name",
        )
        .map_err(|e| ScimError::invalid_value(format!("name.givenName: {e}")))?;
        let last_name = PersonName::parse(
            self.family_name
                .as_deref()
                .ok_or_else(|| ScimError::invalid_value("name.familyName is required"))?,
            "last name",
        )
        .map_err(|e| ScimError::invalid_value(format!("name.familyName: {e}")))?;
        let external_id = match self.external_id {
            Some(id) if id.chars().count() > MAX_EXTERNAL_ID_CHARS => {
                return Err(ScimError::invalid_value(format!(
                    "externalId can be at most {MAX_EXTERNAL_ID_CHARS} characters long"
                )));
            }
            Some(id) if id.chars().any(char::is_control) => {
                return Err(ScimError::invalid_value(
                    "externalId cannot contain control characters",
                ));
            }
            other => other,
        };
        Ok(UserInput {
            email,
            first_name,
            last_name,
            external_id,
            active: self.active.unwrap_or(true),
        })
    }
}

/// `schemas` must name the core User schema, and nothing but the schemas Enroll knows.
fn check_schemas(fields: &Map<String, Value>) -> Result<(), ScimError> {
    let Some((_, schemas)) = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
    else {
        return Err(ScimError::invalid_syntax(format!(
            "schemas is required: [\"{CORE_USER_SCHEMA}\"]"
        )));
    };
    let Value::Array(schemas) = schemas else {
        return Err(ScimError::invalid_syntax("schemas must be a list"));
    };
    let mut has_core = false;
    for schema in schemas {
        let Value::String(urn) = schema else {
            return Err(ScimError::invalid_syntax("schemas must be a list of URNs"));
        };
        if urn.eq_ignore_ascii_case(CORE_USER_SCHEMA) {
            has_core = true;
        } else if !urn.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)
            && !urn.eq_ignore_ascii_case(ENROLLMENT_SCHEMA)
        {
            return Err(ScimError::invalid_syntax(format!(
                "unknown schema {}",
                urn.chars().take(200).collect::<String>()
            )));
        }
    }
    if !has_core {
        return Err(ScimError::invalid_syntax(format!(
            "schemas must include {CORE_USER_SCHEMA}"
        )));
    }
    Ok(())
}

/// A user as SCIM shows them.
#[derive(Debug, Clone)]
pub struct UserResource {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub status_label: &'static str,
    pub invitation_expires: Option<NaiveDateTime>,
    pub enrolled_at: Option<NaiveDateTime>,
    pub provisioned_by: Option<String>,
    pub created: NaiveDateTime,
    pub last_modified: NaiveDateTime,
    /// The ETag: `W/"..."`.
    pub version: String,
}

fn timestamp(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl UserResource {
    /// The resource, its `meta.location` under `base_url` (`<public URL>/scim/v2`).
    /// The enrollment extension is in it; [`project`] keeps it only when asked for.
    pub fn to_json(&self, base_url: &str) -> Value {
        let mut body = json!({
            "schemas": [CORE_USER_SCHEMA, ENROLLMENT_SCHEMA],
            "id": self.id,
            "userName": self.email,
            // No `formatted`: a client that replaces `name` expects back what it sent.
            "name": {
                "givenName": self.first_name,
                "familyName": self.last_name,
            },
            "displayName": format!("{} {}", self.first_name, self.last_name),
            "emails": [{"value": self.email, "type": "work", "primary": true}],
            "active": self.active,
            ENROLLMENT_SCHEMA: {
                "enrollmentStatus": self.status_label,
            },
            "meta": {
                "resourceType": "User",
                "created": timestamp(self.created),
                "lastModified": timestamp(self.last_modified),
                "location": format!("{base_url}/Users/{}", self.id),
                "version": self.version,
            },
        });
        if let Some(external_id) = &self.external_id {
            body["externalId"] = json!(external_id);
        }
        let extension = &mut body[ENROLLMENT_SCHEMA];
        if let Some(at) = self.invitation_expires {
            extension["invitationExpires"] = json!(timestamp(at));
        }
        if let Some(at) = self.enrolled_at {
            extension["enrolledAt"] = json!(timestamp(at));
        }
        if let Some(name) = &self.provisioned_by {
            extension["provisionedBy"] = json!(name);
        }
        body
    }
}

/// One name of an `attributes`/`excludedAttributes` list: the key at the top of the
/// resource, and the sub-attribute when one is named.
fn attribute_key(raw: &str) -> Option<(String, Option<String>)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let core = CORE_USER_SCHEMA.to_ascii_lowercase();
    let extension = ENROLLMENT_SCHEMA.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix(&extension) {
        let sub = rest.strip_prefix(':').map(str::to_owned);
        return Some((extension, sub));
    }
    let path = lower
        .strip_prefix(&core)
        .map(|rest| rest.trim_start_matches(':').to_owned())
        .unwrap_or(lower);
    let (top, sub) = match path.split_once('.') {
        Some((top, sub)) => (top.to_owned(), Some(sub.to_owned())),
        None => (path, None),
    };
    Some((top, sub))
}

/// Applies `attributes` (only these, with `id` and `schemas`) or `excludedAttributes`
/// (all but these) to a resource. Names compare case-insensitively.
pub fn project(resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let Value::Object(mut fields) = resource else {
        return resource;
    };
    let wanted: Vec<(String, Option<String>)> = attributes
        .map(|list| list.split(',').filter_map(attribute_key).collect())
        .unwrap_or_default();
    // The enrollment extension is returned on request only (see discovery).
    let extension = ENROLLMENT_SCHEMA.to_ascii_lowercase();
    if !wanted.iter().any(|(top, _)| *top == extension) {
        fields.remove(ENROLLMENT_SCHEMA);
        if let Some(Value::Array(schemas)) = fields.get_mut("schemas") {
            schemas.retain(|s| s.as_str() != Some(ENROLLMENT_SCHEMA));
        }
    }
    let unwanted: Vec<(String, Option<String>)> = excluded
        .map(|list| list.split(',').filter_map(attribute_key).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (key, value) in fields {
        let lower = key.to_ascii_lowercase();
        let always = lower == "id" || lower == "schemas";
        if !wanted.is_empty() && !always {
            let subs: Vec<&Option<String>> = wanted
                .iter()
                .filter(|(top, _)| *top == lower)
                .map(|(_, sub)| sub)
                .collect();
            if subs.is_empty() {
                continue;
            }
            if subs.iter().any(|sub| sub.is_none()) {
                out.insert(key, value);
            } else if let Value::Object(inner) = value {
                let kept: Map<String, Value> = inner
                    .into_iter()
                    .filter(|(k, _)| {
                        subs.iter()
                            .any(|sub| sub.as_deref() == Some(&k.to_ascii_lowercase()))
                    })
                    .collect();
                out.insert(key, Value::Object(kept));
            } else {
                out.insert(key, value);
            }
            continue;
        }
        if !always {
            let dropped: Vec<&Option<String>> = unwanted
                .iter()
                .filter(|(top, _)| *top == lower)
                .map(|(_, sub)| sub)
                .collect();
            if dropped.iter().any(|sub| sub.is_none()) {
                continue;
            }
            if !dropped.is_empty()
                && let Value::Object(inner) = value
            {
                let kept: Map<String, Value> = inner
                    .into_iter()
                    .filter(|(k, _)| {
                        !dropped
                            .iter()
                            .any(|sub| sub.as_deref() == Some(&k.to_ascii_lowercase()))
                    })
                    .collect();
                out.insert(key, Value::Object(kept));
                continue;
            }
        }
        out.insert(key, value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: Value) -> Value {
        let mut base = json!({
            "schemas": [CORE_USER_SCHEMA],
            "userName": "Ada@Example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
            base.extend(extra);
        }
        base
    }

    #[test]
    fn bodies_from_okta_and_entra_are_understood() {
        let okta = body(json!({
            "emails": [{"primary": true, "value": "ada@example.com", "type": "work"}],
            "displayName": "Ada Lovelace", "locale": "en-US", "groups": [], "active": true,
            "externalId": "00u1"
        }));
        let user = Draft::from_body(&okta).unwrap().finish().unwrap();
        assert_eq!(user.email.as_str(), "Ada@Example.com");
        assert_eq!(user.external_id.as_deref(), Some("00u1"));
        assert!(user.active);
        let entra = body(json!({
            "schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "active": "False", "title": "Engineer",
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"}
        }));
        assert!(!Draft::from_body(&entra).unwrap().finish().unwrap().active);
    }

    #[test]
    fn bad_bodies_are_refused_with_their_reason() {
        for (bad, scim_type) in [
            (json!([]), "invalidSyntax"),
            (json!({"userName": "a@b.co"}), "invalidSyntax"),
            (body(json!({"schemas": ["urn:x"]})), "invalidSyntax"),
            (body(json!({"favouriteColour": "blue"})), "invalidSyntax"),
            (body(json!({"userName": "not an address"})), "invalidValue"),
            (body(json!({"userName": 5})), "invalidValue"),
            (
                body(json!({"name": {"givenName": "A\r\nB", "familyName": "x"}})),
                "invalidValue",
            ),
            (
                body(json!({"name": {"givenName": "x".repeat(5000), "familyName": "x"}})),
                "invalidValue",
            ),
            (
                body(json!({"name": {"givenName": "A\u{0}", "familyName": "x"}})),
                "invalidValue",
            ),
            (body(json!({"active": "maybe"})), "invalidValue"),
            (
                body(json!({"emails": [{"value": "other@example.com"}]})),
                "invalidValue",
            ),
            (body(json!({"externalId": "x".repeat(300)})), "invalidValue"),
            (body(json!({"name": {}})), "invalidValue"),
        ] {
            let error = Draft::from_body(&bad).and_then(Draft::finish).unwrap_err();
            assert_eq!(error.scim_type, Some(scim_type), "{bad}: {error}");
        }
    }

    #[test]
    fn attributes_and_excluded_attributes_shape_the_answer() {
        let user = json!({"schemas": [], "id": "1", "userName": "a", "externalId": "x",
            "name": {"givenName": "A", "familyName": "B"}, "active": true});
        let only = project(user.clone(), Some("userName,name.givenName"), None);
        assert_eq!(
            only,
            json!({"schemas": [], "id": "1", "userName": "a", "name": {"givenName": "A"}})
        );
        let without = project(user, None, Some("externalId, name.familyName"));
        assert_eq!(
            without,
            json!({"schemas": [], "id": "1", "userName": "a",
            "name": {"givenName": "A"}, "active": true})
        );
    }
}
