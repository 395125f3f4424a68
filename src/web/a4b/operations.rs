//! Each operation of the API: its request checked against the model, one call on the
//! domain's operations, the outcome in the model's answer or exception.

use actix_web::web::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ApiError;
use super::wire::{self, UserData};
use crate::operations::{ConfigurationChange, InvitationConfiguration, Principal};
use crate::users::invitations::{CreateOutcome, RevokeOutcome, UninvitedUser};
use crate::users::{EmailAddress, NewInvitee, PersonName};
use crate::web::request::AppState;

/// Users' ARNs: `arn:aws:a4b:::user/<id>`.
const ARN_PREFIX: &str = "arn:aws:a4b:::user/";

pub fn user_arn(id: &str) -> String {
    format!("{ARN_PREFIX}{id}")
}

/// The operation's request, read from the body (a JSON object, see `handle`).
fn parse<T: DeserializeOwned>(input: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(input).map_err(|error| {
        ApiError::model(
            "SerializationException",
            format!("The request does not match the operation's shape: {error}."),
        )
    })
}

fn not_found() -> ApiError {
    ApiError::model("NotFoundException", "The user is not found.")
}

/// The user an ARN names: any ARN of ours that names a user id; others name nobody.
fn user_of_arn(arn: &str) -> Result<String, ApiError> {
    let id = arn
        .rsplit_once(":user/")
        .map(|(_, id)| id)
        .ok_or_else(not_found)?;
    uuid::Uuid::parse_str(id)
        .map(|id| id.to_string())
        .map_err(|_| not_found())
}

/// The user of SendInvitation, RevokeInvitation and DeleteUser: by UserArn, or by
/// EnrollmentId (which is the user's id here); both must agree when both are given.
fn user_of(request: &wire::UserRequest) -> Result<String, ApiError> {
    if let Some(arn) = &request.user_arn {
        wire::check_arn("userArn", arn)?;
    }
    if let Some(id) = &request.enrollment_id {
        wire::check_enrollment_id("enrollmentId", id)?;
    }
    let from_arn = request.user_arn.as_deref().map(user_of_arn).transpose()?;
    let from_enrollment = request
        .enrollment_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| {
            uuid::Uuid::parse_str(id)
                .map(|u| u.to_string())
                .map_err(|_| not_found())
        })
        .transpose()?;
    match (from_arn, from_enrollment) {
        (Some(a), Some(e)) if a != e => Err(ApiError::model(
            "NotFoundException",
            "The enrollment is not the user's.",
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(ApiError::validation("Name the user with UserArn.")),
    }
}

/// The answer of `operation` to `input`, as written on the wire.
pub async fn dispatch(
    operation: &str,
    input: &[u8],
    principal: &Principal,
    state: &AppState,
) -> Result<Bytes, ApiError> {
    if operation == "SearchUsers" {
        // Its answer is written once per shared page of results.
        return search_users(parse(input)?, principal, state).await;
    }
    let answer = answer(operation, input, principal, state).await?;
    Ok(Bytes::from(answer.to_string()))
}

/// The other operations, whose answers are small and made for each request.
async fn answer(
    operation: &str,
    input: &[u8],
    principal: &Principal,
    state: &AppState,
) -> Result<Value, ApiError> {
    let ops = &state.ops;
    match operation {
        "CreateUser" => create_user(parse(input)?, principal, state).await,
        "SendInvitation" => {
            let id = user_of(&parse(input)?)?;
            let report = ops.resend(principal, vec![id]).await?;
            if report.missing > 0 {
                Err(not_found())
            } else if !report.already_enrolled.is_empty() {
                Err(ApiError::model(
                    "InvalidUserStatusException",
                    "The user has already enrolled.",
                ))
            } else if let Some((_, after)) = report.rate_limited.first() {
                Err(ApiError::model(
                    "LimitExceededException",
                    format!(
                        "The user was sent invitations too often in the last hour; try again \
                         after {} UTC.",
                        after.format("%Y-%m-%d %H:%M")
                    ),
                ))
            } else {
                Ok(json!({}))
            }
        }
        "RevokeInvitation" => {
            let id = user_of(&parse(input)?)?;
            match ops.revoke_invitation(principal, id).await? {
                RevokeOutcome::Revoked | RevokeOutcome::NoOpenInvitation => Ok(json!({})),
                RevokeOutcome::AlreadyEnrolled => Err(ApiError::model(
                    "InvalidUserStatusException",
                    "The user has already enrolled: there is no invitation to revoke.",
                )),
                RevokeOutcome::NotFound => Err(not_found()),
            }
        }
        "DeleteUser" => {
            let request: wire::UserRequest = parse(input)?;
            if request.enrollment_id.is_none() {
                return Err(ApiError::validation(
                    "1 validation error detected: Value null at 'enrollmentId' failed to \
                     satisfy constraint: Member must not be null",
                ));
            }
            let id = user_of(&request)?;
            if ops.remove(principal, vec![id]).await?.is_empty() {
                return Err(not_found());
            }
            Ok(json!({}))
        }
        "GetInvitationConfiguration" => match ops.invitation_configuration(principal).await? {
            Some(settings) => Ok(json!({
                "OrganizationName": settings.organization_name,
                "ContactEmail": settings.contact_email,
                "PrivateSkillIds": [],
            })),
            None => Err(ApiError::model(
                "NotFoundException",
                "User invitations are not set up yet.",
            )),
        },
        "PutInvitationConfiguration" => {
            let (organization_name, contact_email) =
                parse::<wire::PutInvitationConfigurationRequest>(input)?.check()?;
            let change = InvitationConfiguration {
                organization_name,
                contact_email,
            };
            match ops.put_invitation_configuration(principal, change).await? {
                ConfigurationChange::Saved => Ok(json!({})),
                ConfigurationChange::NotSetUp => Err(ApiError::model(
                    "NotFoundException",
                    "User invitations are not set up yet: the first set-up (sender, public \
                     URL) is done on the console.",
                )),
                ConfigurationChange::Refused(member, message) => {
                    Err(ApiError::validation(format!("{member}: {message}")))
                }
            }
        }
        "TagResource" => {
            let (arn, tags) = parse::<wire::TagResourceRequest>(input)?.check()?;
            let id = user_of_arn(&arn)?;
            match ops.change_tags(principal, id, tags, Vec::new()).await? {
                Some(true) => Ok(json!({})),
                Some(false) => Err(ApiError::model(
                    "LimitExceededException",
                    format!(
                        "A user can have at most {} tags.",
                        crate::users::tags::MAX_TAGS_PER_USER
                    ),
                )),
                None => Err(not_found()),
            }
        }
        "UntagResource" => {
            let (arn, keys) = parse::<wire::UntagResourceRequest>(input)?.check()?;
            let id = user_of_arn(&arn)?;
            match ops.change_tags(principal, id, Vec::new(), keys).await? {
                Some(_) => Ok(json!({})),
                None => Err(not_found()),
            }
        }
        "ListTags" => list_tags(parse(input)?, principal, state).await,
        "" => Err(ApiError::model(
            "UnknownOperationException",
            "X-Amz-Target must name an operation: AlexaForBusiness.<Operation>.",
        )),
        _ => Err(ApiError::model(
            "UnknownOperationException",
            "This operation is not served here: CreateUser, SearchUsers, SendInvitation, \
             RevokeInvitation, DeleteUser, GetInvitationConfiguration, \
             PutInvitationConfiguration, TagResource, UntagResource and ListTags are.",
        )),
    }
}

async fn create_user(
    request: wire::CreateUserRequest,
    principal: &Principal,
    state: &AppState,
) -> Result<Value, ApiError> {
    let checked = request.check()?;
    let invitee = NewInvitee {
        first_name: PersonName::parse(&checked.first_name, "first name")
            .map_err(|e| ApiError::validation(e.to_string()))?,
        last_name: PersonName::parse(&checked.last_name, "last name")
            .map_err(|e| ApiError::validation(e.to_string()))?,
        email: EmailAddress::parse(&checked.email)
            .map_err(|e| ApiError::validation(e.to_string()))?,
    };
    let token = checked.client_request_token.clone();
    let outcome = state
        .ops
        .create_uninvited(
            principal,
            UninvitedUser {
                invitee,
                api_user_id: checked.user_id,
                client_request_token: checked.client_request_token,
                tags: checked.tags,
            },
        )
        .await?;
    match outcome {
        CreateOutcome::Created { user_id } | CreateOutcome::AlreadyCreated { user_id } => {
            Ok(json!({ "UserArn": user_arn(&user_id) }))
        }
        CreateOutcome::EmailInUse => Err(ApiError::model(
            "ResourceInUseException",
            "A user with this email address already exists.",
        )),
        CreateOutcome::UserIdInUse => Err(ApiError::model(
            "ResourceInUseException",
            "A user with this UserId already exists.",
        )),
        CreateOutcome::TokenInUse => Err(ApiError::model(
            "ResourceInUseException",
            format!(
                "ClientRequestToken {} was used for another user.",
                token.unwrap_or_default()
            ),
        )),
        CreateOutcome::TooManyTags => Err(ApiError::model(
            "LimitExceededException",
            format!(
                "A user can have at most {} tags.",
                crate::users::tags::MAX_TAGS_PER_USER
            ),
        )),
    }
}

async fn search_users(
    request: wire::SearchUsersRequest,
    principal: &Principal,
    state: &AppState,
) -> Result<Bytes, ApiError> {
    let search = request.check()?;
    let results = state
        .ops
        .search_users(principal, search)
        .await?
        .map_err(|_| ApiError::validation("The NextToken does not belong to this search."))?;
    // Results shared by identical requests are written once (a cheap clone after).
    if let Some(answer) = results.answer.get() {
        return Ok(answer.clone());
    }
    let answer = wire::SearchUsersResponse {
        users: results
            .users
            .iter()
            .map(|(found, status)| UserData {
                user_arn: user_arn(&found.row.id),
                first_name: &found.row.first_name,
                last_name: &found.row.last_name,
                email: &found.row.email,
                enrollment_status: status.name(),
                enrollment_id: &found.row.id,
            })
            .collect(),
        next_token: results.next_token.as_deref(),
        total_count: results.total,
    };
    let written = serde_json::to_vec(&answer)
        .map_err(|_| ApiError::internal("SearchUsers' answer could not be written"))?;
    Ok(results.answer.get_or_init(|| Bytes::from(written)).clone())
}

async fn list_tags(
    request: wire::ListTagsRequest,
    principal: &Principal,
    state: &AppState,
) -> Result<Value, ApiError> {
    let (arn, next_token, limit) = request.check()?;
    let after = match next_token {
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ApiError::validation("The NextToken is not valid."))?,
        ),
        None => None,
    };
    let id = user_of_arn(&arn)?;
    let mut tags = state
        .ops
        .tags_of(principal, id)
        .await?
        .ok_or_else(not_found)?;
    // In byte order, as the token compares (a database collation may differ).
    tags.sort_by(|a, b| a.key().cmp(b.key()));
    let remaining: Vec<_> = tags
        .iter()
        .filter(|tag| after.as_deref().is_none_or(|after| tag.key() > after))
        .collect();
    let page: Vec<Value> = remaining
        .iter()
        .take(limit)
        .map(|tag| json!({ "Key": tag.key(), "Value": tag.value() }))
        .collect();
    let mut answer = json!({ "Tags": page });
    if remaining.len() > limit
        && let Some(last) = remaining.get(limit.saturating_sub(1))
    {
        answer["NextToken"] = json!(URL_SAFE_NO_PAD.encode(last.key()));
    }
    Ok(answer)
}
