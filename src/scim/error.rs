//! SCIM error bodies (RFC 7644 §3.12): the status, a `scimType` for 400s and 409s, and
//! a detail an administrator can act on.

use serde_json::{Value, json};

use super::ERROR_SCHEMA;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            None,
            "A valid bearer token is required: create a SCIM token on the API access page",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(403, None, "This credential may not do this")
    }

    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::new(
            429,
            None,
            format!("Too many requests with bad tokens; try again in {retry_after_seconds} s"),
        )
    }

    pub fn precondition_failed() -> Self {
        Self::new(
            412,
            None,
            "The user changed since this version (If-Match): read it again",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(405, None, "This endpoint does not accept this method")
    }

    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }

    pub fn too_large() -> Self {
        Self::new(413, None, "The request body is too large")
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            None,
            "Something went wrong on the server; it was logged",
        )
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        body
    }
}

impl std::fmt::Display for ScimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}
