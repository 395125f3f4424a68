//! `POST /a4b`: the Alexa for Business API for scripts written against the source
//! console (API.md). AWS JSON 1.1: the operation is in `X-Amz-Target`, the request is
//! signed with SigV4 by an access key of the API access page, and errors come back in
//! the SDK's shape (`__type`, `message`). Each operation is one call on `state.ops`
//! (`operations.rs`), acting as the key's role.

mod operations;
pub mod sigv4;
mod wire;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;

use crate::operations::{Error, Principal};
use crate::web::request::{AppState, client_ip};
use sigv4::{Authorization, Refusal, SignedRequest};

pub const TARGET_PREFIX: &str = "AlexaForBusiness.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The largest request any of these operations needs (25 filters of 50 values of 500
/// characters would be more, and no script sends that).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An error in the SDK's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A constraint of the model not met: nothing was done.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    /// One of the model's exceptions (NotFoundException, ResourceInUseException...).
    pub fn model(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    pub fn internal(message: &str) -> Self {
        tracing::error!(message, "the API could not answer");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request could not be completed; try again.",
        )
    }

    fn refused(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Missing => Self::new(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            Refusal::Incomplete(message) => Self::new(
                StatusCode::BAD_REQUEST,
                "IncompleteSignatureException",
                message,
            ),
            Refusal::Expired(message) => {
                Self::new(StatusCode::FORBIDDEN, "InvalidSignatureException", message)
            }
            Refusal::Mismatch => Self::new(
                StatusCode::FORBIDDEN,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method.",
            ),
        }
    }

    fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .content_type(CONTENT_TYPE)
            .insert_header(("x-amzn-ErrorType", self.kind));
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response
            .body(serde_json::json!({ "__type": self.kind, "message": self.message }).to_string())
    }
}

/// How the domain's refusals read in the SDK's terms.
impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound => Self::model("NotFoundException", "The user is not found."),
            Error::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "This access key's role does not allow this operation.",
            ),
            Error::NotSetUp => Self::model(
                "NotFoundException",
                "User invitations are not set up yet: an administrator sets them up on the \
                 console first.",
            ),
            Error::Invalid(input) => Self::validation(input.to_string()),
            // Refused at once beyond the expensive reads' slots, or stopped at the read
            // deadline: the SDK's retry handler tries a 503 again (already logged).
            Error::Database(crate::db::DbError::Busy | crate::db::DbError::TooSlow) => Self {
                retry_after: Some(2),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    "The service is answering many searches right now; try again in a few \
                     seconds, or narrow the search.",
                )
            },
            Error::Database(error) => {
                tracing::error!(%error, "database error in the API");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    "The service is busy; try again.",
                )
            }
            Error::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "unexpected error in the API");
                Self::internal("unexpected")
            }
        }
    }
}

fn throttled(seconds: u64) -> ApiError {
    ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Rate exceeded: too many refused signatures from this address.",
        )
    }
}

/// `POST /a4b`, within its scope (see `server.rs`): signed, not a console page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route(web::post().to(endpoint))
            .route(web::route().to(method_not_allowed)),
    );
}

pub async fn endpoint(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match handle(&req, &body, &state).await {
        Ok(answer) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(answer),
        Err(error) => error.response(),
    }
}

/// Anything but POST.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UnknownOperationException",
        "Requests are POSTed, with the operation in X-Amz-Target.",
    )
    .response()
}

async fn handle(req: &HttpRequest, body: &[u8], state: &AppState) -> Result<web::Bytes, ApiError> {
    let ip = client_ip(req, state.config.trust_proxy);
    state
        .limits
        .machine_request_open(ip.as_deref())
        .map_err(|retry| throttled(retry.seconds()))?;
    let principal = match authenticate(req, body, state, ip.clone()).await {
        Ok(principal) => principal,
        Err(refused) => {
            state.limits.credential_refused(ip.as_deref());
            return Err(refused);
        }
    };
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or_default();
    let input: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // Checked here for every operation; each then reads its own shape from the bytes.
    if serde_json::from_slice::<serde::de::IgnoredAny>(input).is_err() {
        return Err(ApiError::model(
            "SerializationException",
            "The request body is not valid JSON.",
        ));
    }
    if input.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::model(
            "SerializationException",
            "The request body must be a JSON object.",
        ));
    }
    operations::dispatch(operation, input, &principal, state).await
}

/// The access key that signed this request, as the principal it acts as.
async fn authenticate(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    ip: Option<String>,
) -> Result<Principal, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let auth = Authorization::parse(header("authorization")).map_err(ApiError::refused)?;
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.as_bytes()))
            .collect(),
        body,
    };
    let amz_date = signed
        .check_date(&auth, state.clock.now())
        .map_err(ApiError::refused)?;
    let Some(key) = state
        .ops
        .access_key_for_signing(auth.key_id.clone(), ip)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let signing_key = key.signing_key(&auth.scope(), |secret| {
        sigv4::signing_key(secret.expose_secret(), &auth)
    });
    signed
        .verify(&auth, &amz_date, &signing_key)
        .map_err(ApiError::refused)?;
    Ok(state.ops.access_key_verified(key).await)
}
