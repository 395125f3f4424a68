//! SCIM 2.0 at `/scim/v2` (API.md "SCIM 2.0 provisioning"): bearer-token requests
//! translated into the operations' calls, answers and errors in SCIM's JSON. Bad input
//! is always a 4xx with a SCIM error body: identity providers retry 5xx for days.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::request::{AppState, client_ip};
use crate::operations::{Error, Principal, ScimCreated, ScimUpdated};
use crate::scim::patch::PatchRequest;
use crate::scim::user::{Draft, UserResource, project};
use crate::scim::{self, CONTENT_TYPE, LIST_RESPONSE_SCHEMA, ScimError, discovery, filter};

/// Largest request body read; a user is a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// A token longer than this is not one of ours: refused before any lookup.
const MAX_TOKEN_CHARS: usize = 200;
/// A PATCH re-applied when the user changed between its read and its write.
const PATCH_ATTEMPTS: usize = 3;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/ServiceProviderConfig",
        web::get().to(service_provider_config),
    )
    .route("/ResourceTypes", web::get().to(resource_types))
    .route("/ResourceTypes/{id}", web::get().to(resource_type))
    .route("/Schemas", web::get().to(schemas))
    .route("/Schemas/{id}", web::get().to(schema))
    .route("/Users", web::get().to(list_users))
    .route("/Users", web::post().to(create_user))
    .route("/Users/{id}", web::get().to(get_user))
    .route("/Users/{id}", web::put().to(replace_user))
    .route("/Users/{id}", web::patch().to(patch_user))
    .route("/Users/{id}", web::delete().to(delete_user))
    .route("/.search", web::post().to(search_everything));
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/ResourceTypes/{id}",
        "/Schemas",
        "/Schemas/{id}",
        "/Users",
        "/Users/{id}",
    ] {
        cfg.route(path, web::route().to(method_not_allowed));
    }
}

/// Any other path under `/scim/v2`.
pub async fn not_found() -> HttpResponse {
    error(ScimError::not_found("No such endpoint"))
}

fn respond(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(CONTENT_TYPE)
        .body(body.to_string())
}

fn error(error: ScimError) -> HttpResponse {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = HttpResponse::build(status);
    response.content_type(CONTENT_TYPE);
    match error.status {
        401 => {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"Enroll SCIM\""));
        }
        405 => {
            response.insert_header((header::ALLOW, "GET"));
        }
        _ => {}
    }
    response.body(error.body().to_string())
}

/// How a domain error reads to an identity provider.
fn from_domain(error: Error) -> ScimError {
    match error {
        Error::NotFound => ScimError::not_found("No such user"),
        Error::Forbidden => ScimError::forbidden(),
        // Retrying is right here: it works once an administrator has set them up.
        Error::NotSetUp => ScimError::unavailable(
            "Invitations are not set up yet: an administrator must fill in \
             \"Set up user invitations\" before users can be provisioned",
        ),
        Error::Invalid(invalid) => ScimError::invalid_value(invalid.to_string()),
        other => {
            tracing::error!(error = ?other, "a SCIM request failed");
            ScimError::internal()
        }
    }
}

/// The principal of the request's bearer token. A missing, wrong or revoked token is a
/// 401, counted against the client's address (a 429 once it made too many).
async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Principal, HttpResponse> {
    let ip = client_ip(req, state.config.trust_proxy);
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_CHARS)
        .map(|token| SecretString::from(token.to_owned()));
    if let Some(token) = token {
        match state.ops.authenticate_scim_token(token, ip.clone()).await {
            Ok(Some(principal)) => return Ok(principal),
            Ok(None) => {}
            Err(e) => return Err(error(from_domain(e))),
        }
    }
    match state.limits.bad_credential(ip.as_deref()) {
        Ok(()) => Err(error(ScimError::unauthorized())),
        Err(retry) => Err(HttpResponse::TooManyRequests()
            .content_type(CONTENT_TYPE)
            .insert_header((header::RETRY_AFTER, retry.seconds().to_string()))
            .body(
                ScimError::too_many_requests(retry.seconds())
                    .body()
                    .to_string(),
            )),
    }
}

/// Runs `handle` for an authenticated request; every failure is a SCIM response.
macro_rules! scim_request {
    ($req:expr, $state:expr, |$principal:ident| $body:expr) => {{
        let $principal = match authenticate(&$req, &$state).await {
            Ok(principal) => principal,
            Err(response) => return response,
        };
        let result: Result<HttpResponse, ScimError> = async { $body }.await;
        result.unwrap_or_else(error)
    }};
}

/// The query string's parameters, names compared case-insensitively.
fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.into_owned())
}

async fn read_json(mut payload: web::Payload) -> Result<Value, ScimError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ScimError::invalid_syntax("the request body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ScimError::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

fn list_response(resources: Vec<Value>, total: i64, start_index: i64) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

/// A user as answered: projected as the query asks, with its ETag.
fn user_response(
    req: &HttpRequest,
    status: StatusCode,
    user: &UserResource,
    base_url: &str,
) -> HttpResponse {
    let body = project(
        user.to_json(base_url),
        query_param(req, "attributes").as_deref(),
        query_param(req, "excludedAttributes").as_deref(),
    );
    let mut response = HttpResponse::build(status);
    response
        .content_type(CONTENT_TYPE)
        .insert_header((header::ETAG, user.version.clone()));
    if status == StatusCode::CREATED {
        response.insert_header((header::LOCATION, format!("{base_url}/Users/{}", user.id)));
    }
    response.body(body.to_string())
}

fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// A user id from the path: ids are UUIDs, so anything else is no user.
fn user_id(raw: &str) -> Result<String, ScimError> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| ScimError::not_found("No such user"))
}

async fn base_url(state: &AppState) -> Result<String, ScimError> {
    state.ops.scim_base_url().await.map_err(from_domain)
}

// Discovery: readable without a token (RFC 7644 §4 describes them as public
// metadata); writes are 405.

async fn service_provider_config(state: web::Data<AppState>) -> HttpResponse {
    match base_url(&state).await {
        Ok(base) => respond(StatusCode::OK, &discovery::service_provider_config(&base)),
        Err(e) => error(e),
    }
}

async fn resource_types(state: web::Data<AppState>) -> HttpResponse {
    match base_url(&state).await {
        Ok(base) => respond(
            StatusCode::OK,
            &list_response(vec![discovery::user_resource_type(&base)], 1, 1),
        ),
        Err(e) => error(e),
    }
}

async fn resource_type(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    if path.as_str() != "User" {
        return error(ScimError::not_found("No such resource type"));
    }
    match base_url(&state).await {
        Ok(base) => respond(StatusCode::OK, &discovery::user_resource_type(&base)),
        Err(e) => error(e),
    }
}

async fn schemas(state: web::Data<AppState>) -> HttpResponse {
    match base_url(&state).await {
        Ok(base) => {
            let all = discovery::schemas(&base);
            let total = i64::try_from(all.len()).unwrap_or(0);
            respond(StatusCode::OK, &list_response(all, total, 1))
        }
        Err(e) => error(e),
    }
}

async fn schema(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let base = match base_url(&state).await {
        Ok(base) => base,
        Err(e) => return error(e),
    };
    match discovery::schema(&base, path.as_str()) {
        Some(schema) => respond(StatusCode::OK, &schema),
        None => error(ScimError::not_found("No such schema")),
    }
}

async fn method_not_allowed() -> HttpResponse {
    error(ScimError::method_not_allowed())
}

/// Searching across resource types at the root is not offered (RFC 7644 §3.4.3: 501).
async fn search_everything() -> HttpResponse {
    error(ScimError::not_implemented(
        "Searching all resource types at once is not supported; GET /Users with a filter",
    ))
}

async fn list_users(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    scim_request!(req, state, |principal| {
        let filter = match query_param(&req, "filter") {
            Some(raw) if !raw.trim().is_empty() => {
                filter::parse(&raw).map_err(|e| ScimError::invalid_filter(e.0))?
            }
            _ => filter::UserFilter::default(),
        };
        let (start, count) = scim::paging(
            query_param(&req, "startIndex").as_deref(),
            query_param(&req, "count").as_deref(),
        )?;
        let base = base_url(&state).await?;
        let (total, users) = state
            .ops
            .scim_users(&principal, filter, start, count)
            .await
            .map_err(from_domain)?;
        let attributes = query_param(&req, "attributes");
        let excluded = query_param(&req, "excludedAttributes");
        let resources = users
            .iter()
            .map(|user| {
                project(
                    user.to_json(&base),
                    attributes.as_deref(),
                    excluded.as_deref(),
                )
            })
            .collect();
        Ok(respond(
            StatusCode::OK,
            &list_response(resources, total, start),
        ))
    })
}

async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    scim_request!(req, state, |principal| {
        let body = read_json(payload).await?;
        let user = Draft::from_body(&body)?.finish()?;
        let base = base_url(&state).await?;
        match state
            .ops
            .scim_create(&principal, user)
            .await
            .map_err(from_domain)?
        {
            ScimCreated::Created(user) => {
                Ok(user_response(&req, StatusCode::CREATED, &user, &base))
            }
            ScimCreated::Taken => Err(ScimError::uniqueness(
                "A user with this userName (email address) already exists",
            )),
        }
    })
}

async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    scim_request!(req, state, |principal| {
        let id = user_id(&path)?;
        let base = base_url(&state).await?;
        let user = state
            .ops
            .scim_user(&principal, id)
            .await
            .map_err(from_domain)?
            .ok_or_else(|| ScimError::not_found("No such user"))?;
        let unchanged = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == user.version));
        if unchanged {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, user.version.clone()))
                .finish());
        }
        Ok(user_response(&req, StatusCode::OK, &user, &base))
    })
}

fn updated(req: &HttpRequest, outcome: ScimUpdated, base: &str) -> Result<HttpResponse, ScimError> {
    match outcome {
        ScimUpdated::Updated(user) => Ok(user_response(req, StatusCode::OK, &user, base)),
        ScimUpdated::NotFound => Err(ScimError::not_found("No such user")),
        ScimUpdated::VersionMismatch => Err(ScimError::precondition_failed()),
        ScimUpdated::EmailChanged => Err(ScimError::mutability(
            "userName is the user's email address and identity: it cannot change. Remove \
             the user and create one with the new address",
        )),
    }
}

async fn replace_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    scim_request!(req, state, |principal| {
        let id = user_id(&path)?;
        let body = read_json(payload).await?;
        let user = Draft::from_body(&body)?.finish()?;
        let base = base_url(&state).await?;
        let outcome = state
            .ops
            .scim_update(&principal, id, user, if_match(&req))
            .await
            .map_err(from_domain)?;
        updated(&req, outcome, &base)
    })
}

async fn patch_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    scim_request!(req, state, |principal| {
        let id = user_id(&path)?;
        let body = read_json(payload).await?;
        let patch = PatchRequest::parse(&body)?;
        let base = base_url(&state).await?;
        let asked = if_match(&req);
        for _ in 0..PATCH_ATTEMPTS {
            let current = state
                .ops
                .scim_user(&principal, id.clone())
                .await
                .map_err(from_domain)?
                .ok_or_else(|| ScimError::not_found("No such user"))?;
            let mut draft = Draft {
                user_name: Some(current.email.clone()),
                given_name: Some(current.first_name.clone()),
                family_name: Some(current.last_name.clone()),
                emails: Vec::new(),
                external_id: current.external_id.clone(),
                active: Some(current.active),
            };
            patch.apply(&mut draft)?;
            let user = draft.finish()?;
            // The changes apply to the user as read: if they changed meanwhile (a
            // console Resend, another PATCH), read them again and re-apply.
            let expected = asked.clone().unwrap_or_else(|| current.version.clone());
            let outcome = state
                .ops
                .scim_update(&principal, id.clone(), user, Some(expected))
                .await
                .map_err(from_domain)?;
            if matches!(outcome, ScimUpdated::VersionMismatch) && asked.is_none() {
                continue;
            }
            return updated(&req, outcome, &base);
        }
        Err(ScimError::precondition_failed())
    })
}

async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    scim_request!(req, state, |principal| {
        let id = user_id(&path)?;
        if state
            .ops
            .scim_delete(&principal, id)
            .await
            .map_err(from_domain)?
        {
            Ok(HttpResponse::NoContent().finish())
        } else {
            Err(ScimError::not_found("No such user"))
        }
    })
}
