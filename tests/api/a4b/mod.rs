//! The Alexa for Business API (`POST /a4b`): requests signed with the AWS SDK for Rust's
//! own SigV4 signer (`aws-sigv4`, not the server's verifier), each operation and each
//! refusal; and, in `boto3`, the real Python client running a customer's script.

mod boto3;
mod errors;
mod operations;
mod search;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::{Value, json};

use crate::credentials::{create_credential, element_text};
use crate::support::*;

/// A script's client: an access key, and the endpoint.
pub struct A4b {
    pub url: String,
    pub key_id: String,
    pub secret: String,
    pub name: String,
    client: reqwest::Client,
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error's `__type`, as the SDK reads it.
    pub fn error(&self) -> &str {
        self.body["__type"].as_str().unwrap_or("")
    }

    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{:?}", self.body);
        self.body
    }

    /// A refusal with this `__type`, status and a message.
    pub fn refused(&self, status: u16, kind: &str) {
        assert_eq!(
            (self.status, self.error()),
            (status, kind),
            "{:?}",
            self.body
        );
        assert!(
            !self.body["message"].as_str().unwrap_or("").is_empty(),
            "{:?}",
            self.body
        );
    }
}

impl A4b {
    /// An access key made on the API access page by the signed-in administrator.
    pub async fn key(app: &TestApp, name: &str, role: &str) -> Self {
        let page = create_credential(app, name, "access-key", role).await;
        assert_eq!(page.status, 200, "{}", page.text());
        Self {
            url: app.url("/a4b"),
            key_id: element_text(&page, "new-key-id").expect("the key id is shown"),
            secret: element_text(&page, "new-secret").expect("the secret is shown"),
            name: name.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// A key already made (on another instance's page, say), for the endpoint at `url`.
    pub fn at(url: String, key_id: String, secret: String, name: &str) -> Self {
        Self {
            url,
            key_id,
            secret,
            name: name.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// An administrator's key, with invitations set up.
    pub async fn admin(app: &TestApp) -> Self {
        app.set_up_invitations().await;
        Self::key(app, "onboarding script", "administrator").await
    }

    pub fn with_secret(&self, secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            url: self.url.clone(),
            key_id: self.key_id.clone(),
            name: self.name.clone(),
            client: self.client.clone(),
        }
    }

    pub fn with_key_id(&self, key_id: &str) -> Self {
        Self {
            key_id: key_id.to_owned(),
            ..self.with_secret(&self.secret)
        }
    }

    /// The headers of a signed request, as the SDK would send them.
    pub fn signed(&self, operation: &str, body: &[u8], at: SystemTime) -> Vec<(String, String)> {
        let mut headers = vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            (
                "x-amz-target".to_owned(),
                format!("AlexaForBusiness.{operation}"),
            ),
            (
                "host".to_owned(),
                self.url
                    .trim_start_matches("http://")
                    .trim_end_matches("/a4b")
                    .to_owned(),
            ),
        ];
        let identity = Credentials::new(&self.key_id, &self.secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("a4b")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let (added, _) = instructions.into_parts();
        for header in added {
            headers.push((header.name().to_owned(), header.value().to_owned()));
        }
        headers
    }

    /// Sends these headers and body to the endpoint.
    pub async fn send(&self, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let mut request = self.client.post(&self.url).body(body);
        for (name, value) in headers {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Answer { status, body }
    }

    pub async fn call_at(&self, operation: &str, input: Value, at: SystemTime) -> Answer {
        let body = serde_json::to_vec(&input).unwrap();
        let headers = self.signed(operation, &body, at);
        self.send(&headers, body).await
    }

    pub async fn call(&self, operation: &str, input: Value) -> Answer {
        self.call_at(operation, input, SystemTime::now()).await
    }

    /// CreateUser; the new user's ARN.
    pub async fn create_user(&self, user_id: &str, first: &str, last: &str, email: &str) -> String {
        let answer = self
            .call(
                "CreateUser",
                json!({ "UserId": user_id, "FirstName": first, "LastName": last, "Email": email }),
            )
            .await
            .ok();
        answer["UserArn"].as_str().unwrap().to_owned()
    }

    /// SearchUsers for one address: its UserData.
    pub async fn user(&self, email: &str) -> Value {
        let answer = self
            .call(
                "SearchUsers",
                json!({ "Filters": [{ "Key": "Email", "Values": [email] }] }),
            )
            .await
            .ok();
        assert_eq!(answer["TotalCount"], 1, "{answer}");
        answer["Users"][0].clone()
    }
}
