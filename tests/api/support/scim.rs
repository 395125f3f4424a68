//! A SCIM client as an identity provider is one: a bearer token and JSON over HTTP.

use serde_json::{Value, json};

use super::TestApp;

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ENROLLMENT: &str = "urn:enroll:params:scim:schemas:extension:enrollment:2.0:User";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub struct ScimAnswer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl ScimAnswer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// A SCIM error body with this status (and `scimType`, when given).
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["schemas"], json!([ERROR]), "{}", self.body);
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "{}",
            self.body
        );
        if let Some(scim_type) = scim_type {
            assert_eq!(self.body["scimType"], json!(scim_type), "{}", self.body);
        }
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/scim+json")),
            "{:?}",
            self.header("content-type")
        );
    }
}

pub struct Scim<'a> {
    pub app: &'a TestApp,
    pub token: String,
    client: reqwest::Client,
}

impl<'a> Scim<'a> {
    pub fn new(app: &'a TestApp, token: &str) -> Self {
        Self {
            app,
            token: token.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> ScimAnswer {
        let mut request = self
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/scim+json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        ScimAnswer {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> ScimAnswer {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> ScimAnswer {
        self.send(reqwest::Method::POST, path, Some(body.to_string()), &[])
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> ScimAnswer {
        self.send(reqwest::Method::PUT, path, Some(body.to_string()), &[])
            .await
    }

    pub async fn patch(&self, path: &str, operations: Value) -> ScimAnswer {
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        self.send(reqwest::Method::PATCH, path, Some(body.to_string()), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> ScimAnswer {
        self.send(reqwest::Method::DELETE, path, None, &[]).await
    }

    /// POST /Users as Okta sends it; the created user's id.
    pub async fn create(&self, email: &str, first: &str, last: &str) -> String {
        let answer = self.post("/Users", &okta_user(email, first, last)).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["id"].as_str().unwrap().to_owned()
    }
}

/// A user as Okta's POST carries it.
pub fn okta_user(email: &str, first: &str, last: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": email,
        "name": {"givenName": first, "familyName": last},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "displayName": format!("{first} {last}"),
        "locale": "en-US",
        "externalId": format!("00u-{email}"),
        "groups": [],
        "active": true
    })
}
