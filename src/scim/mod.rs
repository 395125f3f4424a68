//! SCIM 2.0 (RFC 7643 / 7644) as a protocol: the wire shapes identity providers send
//! and expect, with no database and no HTTP in here. `web::scim` translates requests
//! into these and the operations' calls; `users::provisioning` does the work.

pub mod discovery;
pub mod error;
pub mod filter;
pub mod patch;
pub mod paths;
pub mod user;

pub use error::ScimError;

pub const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Enroll's read-only extension: where the enrollment state is read.
pub const ENROLLMENT_SCHEMA: &str = "urn:enroll:params:scim:schemas:extension:enrollment:2.0:User";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The media type of every answer (`application/json` is accepted in requests too).
pub const CONTENT_TYPE: &str = "application/scim+json";

/// Most users one page lists; a larger `count` is lowered to it (RFC 7644 §3.4.2.4).
pub const MAX_PAGE_SIZE: i64 = 200;
pub const DEFAULT_PAGE_SIZE: i64 = 100;

/// `startIndex` and `count` from a query string: 1-based, positive integers.
pub fn paging(start_index: Option<&str>, count: Option<&str>) -> Result<(i64, i64), ScimError> {
    fn positive(raw: Option<&str>, name: &str, default: i64) -> Result<i64, ScimError> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        match raw.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ScimError::invalid_value(format!(
                "{name} must be a whole number of at least 1, not {:?}",
                raw.chars().take(40).collect::<String>()
            ))),
        }
    }
    let start = positive(start_index, "startIndex", 1)?;
    let count = positive(count, "count", DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE);
    Ok((start, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_positive_integers_only() {
        assert_eq!(paging(None, None).unwrap(), (1, DEFAULT_PAGE_SIZE));
        assert_eq!(paging(Some("3"), Some("1000")).unwrap(), (3, MAX_PAGE_SIZE));
        for (start, count) in [
            (Some("0"), None),
            (Some("-1"), None),
            (Some("one"), None),
            (None, Some("0")),
            (None, Some("-5")),
            (None, Some("1.5")),
            (Some("99999999999999999999"), None),
        ] {
            let error = paging(start, count).unwrap_err();
            assert_eq!(error.status, 400);
            assert_eq!(error.scim_type, Some("invalidValue"));
        }
    }
}
