//! The discovery documents (RFC 7644 §4): what this service provider supports, its one
//! resource type, and the schemas of its attributes with their mutability, which
//! clients read to know what they may write.

use serde_json::{Value, json};

use super::{
    CORE_USER_SCHEMA, ENROLLMENT_SCHEMA, MAX_PAGE_SIZE, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
};

fn meta(resource_type: &str, location: String) -> Value {
    json!({"resourceType": resource_type, "location": location})
}

pub fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_PAGE_SIZE},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token created on the API access page (or with `enroll token add --kind scim`)",
            "primary": true
        }],
        "meta": meta("ServiceProviderConfig", format!("{base_url}/ServiceProviderConfig")),
    })
}

pub fn user_resource_type(base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A person invited to the organization",
        "schema": CORE_USER_SCHEMA,
        // The enrollment extension is not listed: its attributes are all read-only and
        // returned only on request, and a client that finds an extension here takes it
        // as writable as a whole (scim2-tester then PATCHes it and fails).
        "schemaExtensions": [],
        "meta": meta("ResourceType", format!("{base_url}/ResourceTypes/User")),
    })
}

#[allow(clippy::too_many_arguments)]
fn attribute(
    name: &str,
    kind: &str,
    required: bool,
    mutability: &str,
    returned: &str,
    uniqueness: &str,
    case_exact: bool,
    description: &str,
) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    })
}

pub fn user_schema(base_url: &str) -> Value {
    let text = |name, required, mutability, description| {
        attribute(
            name,
            "string",
            required,
            mutability,
            "default",
            "none",
            false,
            description,
        )
    };
    let user_name = attribute(
        "userName",
        "string",
        true,
        "immutable",
        "default",
        "server",
        false,
        "The email address the invitation goes to; unique, case-insensitively. It is the \
         user's identity and cannot change.",
    );
    let mut name = attribute(
        "name",
        "complex",
        true,
        "readWrite",
        "default",
        "none",
        false,
        "The user's name",
    );
    name["subAttributes"] = json!([
        text("givenName", true, "readWrite", "First name"),
        text("familyName", true, "readWrite", "Last name"),
    ]);
    let mut emails = attribute(
        "emails",
        "complex",
        false,
        "readOnly",
        "default",
        "none",
        false,
        "The one address, the same as userName (a write of the same address is accepted)",
    );
    emails["multiValued"] = json!(true);
    emails["subAttributes"] = json!([
        text("value", false, "readOnly", "The address"),
        text("type", false, "readOnly", "Always work"),
        attribute(
            "primary",
            "boolean",
            false,
            "readOnly",
            "default",
            "none",
            false,
            "Always true"
        ),
    ]);
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": CORE_USER_SCHEMA,
        "name": "User",
        "description": "A person invited to the organization",
        "attributes": [
            user_name,
            name,
            text("displayName", false, "readOnly", "First and last name"),
            emails,
            attribute(
                "active", "boolean", true, "readWrite", "default", "none", false,
                "false deactivates the user (links dead, queued mail cancelled, user kept); \
                 true again sends a fresh invitation"
            ),
        ],
        "meta": meta("Schema", format!("{base_url}/Schemas/{CORE_USER_SCHEMA}")),
    })
}

pub fn enrollment_schema(base_url: &str) -> Value {
    let read_only = |name, kind, description| {
        attribute(
            name,
            kind,
            false,
            "readOnly",
            "request",
            "none",
            true,
            description,
        )
    };
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": ENROLLMENT_SCHEMA,
        "name": "Enrollment",
        "description": "Where the user's invitation stands (read-only; returned when asked for with attributes=urn:enroll:params:scim:schemas:extension:enrollment:2.0:User)",
        "attributes": [
            read_only(
                "enrollmentStatus", "string",
                "Pending, Sending, Expired, Delivery failed, Enrolled or Deactivated"
            ),
            read_only("invitationExpires", "dateTime", "When the live invitation expires"),
            read_only("enrolledAt", "dateTime", "When the user joined"),
            read_only("provisionedBy", "string", "The credential that created the user"),
        ],
        "meta": meta("Schema", format!("{base_url}/Schemas/{ENROLLMENT_SCHEMA}")),
    })
}

pub fn schemas(base_url: &str) -> Vec<Value> {
    vec![user_schema(base_url), enrollment_schema(base_url)]
}

/// The schema with this id, if any.
pub fn schema(base_url: &str, id: &str) -> Option<Value> {
    schemas(base_url)
        .into_iter()
        .find(|schema| schema["id"].as_str() == Some(id))
}
