//! PATCH (RFC 7644 §3.5.2) as identity providers send it: with or without `path`,
//! `op` in any letter case (Entra's `"Replace"`), booleans as strings, dotted or
//! URN-qualified keys in a path-less value. Applied to a [`Draft`] of the user as it
//! is, then checked as a PUT would be.

use serde_json::Value;

use super::paths::{AttributePath, parse_path};
use super::user::Draft;
use super::{PATCH_OP_SCHEMA, ScimError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// The operations of a PATCH body, in order.
pub struct PatchRequest {
    operations: Vec<(Op, Option<AttributePath>, Option<Value>)>,
}

/// Most operations one PATCH may carry.
const MAX_OPERATIONS: usize = 100;

fn field<'a>(object: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl PatchRequest {
    pub fn parse(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(object) = body else {
            return Err(ScimError::invalid_syntax("the body must be a JSON object"));
        };
        let schemas = field(object, "schemas");
        let names_patch_op = matches!(schemas, Some(Value::Array(list))
            if list.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))));
        if !names_patch_op {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must be [\"{PATCH_OP_SCHEMA}\"]"
            )));
        }
        for key in object.keys() {
            if !key.eq_ignore_ascii_case("schemas") && !key.eq_ignore_ascii_case("operations") {
                return Err(ScimError::invalid_syntax(format!(
                    "a PATCH body has no attribute `{key}`"
                )));
            }
        }
        let Some(Value::Array(raw)) = field(object, "Operations") else {
            return Err(ScimError::invalid_syntax("Operations must be a list"));
        };
        if raw.is_empty() || raw.len() > MAX_OPERATIONS {
            return Err(ScimError::invalid_value(format!(
                "a PATCH carries 1 to {MAX_OPERATIONS} operations"
            )));
        }
        let mut operations = Vec::with_capacity(raw.len());
        for operation in raw {
            let Value::Object(operation) = operation else {
                return Err(ScimError::invalid_syntax(
                    "each operation must be an object",
                ));
            };
            let op = match field(operation, "op").and_then(Value::as_str) {
                Some(op) if op.eq_ignore_ascii_case("add") => Op::Add,
                Some(op) if op.eq_ignore_ascii_case("replace") => Op::Replace,
                Some(op) if op.eq_ignore_ascii_case("remove") => Op::Remove,
                _ => {
                    return Err(ScimError::invalid_syntax(
                        "op must be add, replace or remove",
                    ));
                }
            };
            let path = match field(operation, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) => {
                    Some(parse_path(path).map_err(ScimError::invalid_path)?)
                }
                Some(_) => return Err(ScimError::invalid_path("path must be a string")),
            };
            let value = field(operation, "value").cloned();
            match (op, &path, &value) {
                (Op::Remove, None, _) => {
                    return Err(ScimError::no_target("remove needs a path"));
                }
                (Op::Add | Op::Replace, _, None) => {
                    return Err(ScimError::invalid_value("add and replace need a value"));
                }
                (Op::Add | Op::Replace, None, Some(value)) if !value.is_object() => {
                    return Err(ScimError::invalid_value(
                        "without a path, the value must be an object of attributes",
                    ));
                }
                _ => {}
            }
            operations.push((op, path, value));
        }
        Ok(Self { operations })
    }

    /// Applies the operations, in order, to `draft`.
    pub fn apply(&self, draft: &mut Draft) -> Result<(), ScimError> {
        for (op, path, value) in &self.operations {
            match (op, path, value) {
                (Op::Remove, Some(path), _) => remove(draft, *path)?,
                (_, Some(path), Some(value)) => set(draft, *path, value)?,
                (_, None, Some(Value::Object(attributes))) => {
                    for (key, value) in attributes {
                        let path = parse_path(key).map_err(ScimError::invalid_path)?;
                        set(draft, path, value)?;
                    }
                }
                _ => return Err(ScimError::invalid_value("an operation lacks its value")),
            }
        }
        Ok(())
    }
}

fn set(draft: &mut Draft, path: AttributePath, value: &Value) -> Result<(), ScimError> {
    if let AttributePath::ReadOnly(name) = path {
        return Err(ScimError::mutability(format!(
            "{name} is set by Enroll and cannot be changed"
        )));
    }
    draft.set(path, value)
}

fn remove(draft: &mut Draft, path: AttributePath) -> Result<(), ScimError> {
    match path {
        AttributePath::ExternalId => draft.external_id = None,
        AttributePath::Ignored => {}
        AttributePath::Active => {
            return Err(ScimError::invalid_value(
                "active cannot be removed: replace it with false to deactivate the user",
            ));
        }
        AttributePath::UserName | AttributePath::Emails | AttributePath::EmailValue => {
            return Err(ScimError::mutability(
                "the email address is the user's identity: it cannot be removed",
            ));
        }
        AttributePath::Name | AttributePath::GivenName | AttributePath::FamilyName => {
            return Err(ScimError::invalid_value(
                "a user needs a first and a last name: replace them instead",
            ));
        }
        AttributePath::ReadOnly(name) => {
            return Err(ScimError::mutability(format!(
                "{name} is set by Enroll and cannot be removed"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft() -> Draft {
        Draft {
            user_name: Some("ada@example.com".to_owned()),
            given_name: Some("Ada".to_owned()),
            family_name: Some("Lovelace".to_owned()),
            emails: Vec::new(),
            external_id: Some("x".to_owned()),
            active: Some(true),
        }
    }

    fn patched(operations: Value) -> Result<Draft, ScimError> {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
        let mut draft = draft();
        PatchRequest::parse(&body)?.apply(&mut draft)?;
        Ok(draft)
    }

    #[test]
    fn okta_and_entra_patches_apply() {
        let okta = patched(json!([{"op": "replace", "value": {"active": false}}])).unwrap();
        assert_eq!(okta.active, Some(false));
        let entra = patched(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada@example.com"},
            {"op": "Add", "path": "name.givenName", "value": "Augusta"},
            {"op": "Replace", "value": {"name.familyName": "King", "urn:ietf:params:scim:schemas:core:2.0:User:externalId": "y"}},
            {"op": "Remove", "path": "title"}
        ]))
        .unwrap();
        assert_eq!(entra.active, Some(false));
        assert_eq!(entra.given_name.as_deref(), Some("Augusta"));
        assert_eq!(entra.family_name.as_deref(), Some("King"));
        assert_eq!(entra.external_id.as_deref(), Some("y"));
        let removed = patched(json!([{"op": "remove", "path": "externalId"}])).unwrap();
        assert_eq!(removed.external_id, None);
    }

    #[test]
    fn bad_patches_are_refused() {
        for (operations, scim_type) in [
            (json!([]), "invalidValue"),
            (
                json!([{"op": "move", "path": "active", "value": true}]),
                "invalidSyntax",
            ),
            (json!([{"op": "remove"}]), "noTarget"),
            (
                json!([{"op": "replace", "path": "nickname2", "value": "x"}]),
                "invalidPath",
            ),
            (
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                "mutability",
            ),
            (json!([{"op": "remove", "path": "userName"}]), "mutability"),
            (json!([{"op": "replace", "value": "x"}]), "invalidValue"),
            (json!([{"op": "replace", "path": "active"}]), "invalidValue"),
            (
                json!([{"op": "replace", "path": "active", "value": "yes"}]),
                "invalidValue",
            ),
            (json!("x"), "invalidSyntax"),
        ] {
            let error = patched(operations.clone())
                .err()
                .unwrap_or_else(|| panic!("{operations}"));
            assert_eq!(error.scim_type, Some(scim_type), "{operations}: {error}");
        }
        let no_schema = PatchRequest::parse(&json!({"Operations": []}));
        assert!(no_schema.is_err());
    }
}
