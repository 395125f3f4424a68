//! The requests and answers of the operations served, with the service model's names,
//! and its constraints (lengths, patterns, enums, list sizes) checked as the model
//! states them (botocore 1.34.100, `alexaforbusiness/2017-11-09/service-2.json`).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::ApiError;

/// The model's patterns, anchored (the service matched whole values).
struct Patterns {
    user_id: Regex,
    name: Regex,
    email: Regex,
    client_request_token: Regex,
    arn: Regex,
    organization_name: Regex,
    skill_id: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    Some(Patterns {
        user_id: Regex::new(r"^[a-zA-Z0-9@_+.-]*$").ok()?,
        name: Regex::new(r"^([A-Za-z\-' 0-9._]|\p{L})*$").ok()?,
        // Java's \w is ASCII; `[+-.]` is the range + , - .
        email: Regex::new(
            r"^[A-Za-z0-9_][+,\-.A-Za-z0-9_]*@[A-Za-z0-9_][A-Za-z0-9_.\-]+\.[0-9a-zA-Z]{2,24}$",
        )
        .ok()?,
        client_request_token: Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$").ok()?,
        arn: Regex::new(
            r"^arn:[a-z0-9\-.]{1,63}:[a-z0-9\-.]{0,63}:[a-z0-9\-.]{0,63}:[a-z0-9\-.]{0,63}:[^/].{0,1023}$",
        )
        .ok()?,
        organization_name: Regex::new(
            r"^[\t\n\r\x20-\x7E\x{85}\x{A0}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]*$",
        )
        .ok()?,
        skill_id: Regex::new(
            r"^((amzn1\.ask\.skill\.[0-9a-f\-]{1,200})|(amzn1\.echo-sdk-ams\.app\.[0-9a-f\-]{1,200}))$",
        )
        .ok()?,
    })
});

fn patterns() -> Result<&'static Patterns, ApiError> {
    PATTERNS
        .as_ref()
        .ok_or_else(|| ApiError::internal("the model's patterns did not compile"))
}

/// A string member: its length in characters within `min..=max`, and its pattern.
fn check(
    member: &str,
    value: &str,
    min: usize,
    max: usize,
    pattern: Option<&Regex>,
) -> Result<(), ApiError> {
    let length = value.chars().count();
    if length < min || length > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must have length between {min} and {max}"
        )));
    }
    if let Some(pattern) = pattern
        && !pattern.is_match(value)
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: {}",
            pattern
                .as_str()
                .trim_start_matches('^')
                .trim_end_matches('$')
        )));
    }
    Ok(())
}

fn required<'a, T>(member: &str, value: &'a Option<T>) -> Result<&'a T, ApiError> {
    value.as_ref().ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy \
             constraint: Member must not be null"
        ))
    })
}

fn at_most<T>(member: &str, list: &[T], max: usize) -> Result<(), ApiError> {
    if list.len() > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
}

pub fn check_arn(member: &str, arn: &str) -> Result<(), ApiError> {
    check(member, arn, 1, 1100, Some(&patterns()?.arn))
}

pub fn check_enrollment_id(member: &str, id: &str) -> Result<(), ApiError> {
    check(member, id, 0, 128, None)
}

fn check_max_results(value: Option<i64>) -> Result<(), ApiError> {
    match value {
        Some(n) if !(1..=50).contains(&n) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
             constraint: Member must have value between 1 and 50"
        ))),
        _ => Ok(()),
    }
}

fn check_next_token(value: Option<&String>) -> Result<(), ApiError> {
    match value {
        Some(token) => check("nextToken", token, 1, 1100, None),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Value")]
    pub value: Option<String>,
}

fn check_tags(member: &str, tags: &[Tag]) -> Result<Vec<crate::users::tags::Tag>, ApiError> {
    tags.iter()
        .map(|tag| {
            let key = required(&format!("{member}.member.key"), &tag.key)?;
            let value = required(&format!("{member}.member.value"), &tag.value)?;
            check(&format!("{member}.member.key"), key, 1, 128, None)?;
            check(&format!("{member}.member.value"), value, 0, 256, None)?;
            crate::users::tags::Tag::new(key, value)
                .map_err(|e| ApiError::validation(e.to_string()))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct CreateUserRequest {
    #[serde(rename = "UserId")]
    pub user_id: Option<String>,
    #[serde(rename = "FirstName")]
    pub first_name: Option<String>,
    #[serde(rename = "LastName")]
    pub last_name: Option<String>,
    #[serde(rename = "Email")]
    pub email: Option<String>,
    #[serde(rename = "ClientRequestToken")]
    pub client_request_token: Option<String>,
    #[serde(rename = "Tags", default)]
    pub tags: Vec<Tag>,
}

/// CreateUser, checked: the user id, the names, the address, the token and the tags.
pub struct CreateUser {
    pub user_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub client_request_token: Option<String>,
    pub tags: Vec<crate::users::tags::Tag>,
}

impl CreateUserRequest {
    pub fn check(self) -> Result<CreateUser, ApiError> {
        let p = patterns()?;
        let user_id = required("userId", &self.user_id)?;
        check("userId", user_id, 1, 128, Some(&p.user_id))?;
        let first_name = self.first_name.unwrap_or_default();
        check("firstName", &first_name, 0, 30, Some(&p.name))?;
        let last_name = self.last_name.unwrap_or_default();
        check("lastName", &last_name, 0, 30, Some(&p.name))?;
        // Optional in the model; Enroll's users are their address, so it is needed here.
        let email = self.email.ok_or_else(|| {
            ApiError::validation("Email is required: Enroll identifies a user by their address.")
        })?;
        check("email", &email, 1, 128, Some(&p.email))?;
        if let Some(token) = &self.client_request_token {
            check(
                "clientRequestToken",
                token,
                10,
                150,
                Some(&p.client_request_token),
            )?;
        }
        let tags = check_tags("tags", &self.tags)?;
        Ok(CreateUser {
            user_id: user_id.clone(),
            first_name,
            last_name,
            email,
            client_request_token: self.client_request_token,
            tags,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct Filter {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Values")]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Sort {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Value")]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchUsersRequest {
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i64>,
    #[serde(rename = "Filters", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "SortCriteria", default)]
    pub sort_criteria: Vec<Sort>,
}

/// What SearchUsers returns when MaxResults is not given.
const DEFAULT_MAX_RESULTS: i64 = 10;

impl SearchUsersRequest {
    pub fn check(self) -> Result<crate::users::api_search::Search, ApiError> {
        use crate::users::api_search::{ApiStatus, Field, Filter, Search, Sort};
        check_max_results(self.max_results)?;
        check_next_token(self.next_token.as_ref())?;
        at_most("filters", &self.filters, 25)?;
        at_most("sortCriteria", &self.sort_criteria, 25)?;
        let field = |member: &str, key: &Option<String>| -> Result<Field, ApiError> {
            let key = required(member, key)?;
            check(member, key, 1, 500, None)?;
            Field::parse(key).ok_or_else(|| {
                ApiError::validation(format!(
                    "{key} is not a supported key: use UserId, FirstName, LastName, Email or \
                     EnrollmentStatus."
                ))
            })
        };
        let mut filters = Vec::with_capacity(self.filters.len());
        for filter in &self.filters {
            let field = field("filters.member.key", &filter.key)?;
            let values = required("filters.member.values", &filter.values)?;
            at_most("filters.member.values", values, 50)?;
            for value in values {
                check("filters.member.values.member", value, 1, 500, None)?;
                if field == Field::EnrollmentStatus && ApiStatus::parse(value).is_none() {
                    return Err(ApiError::validation(format!(
                        "{value} is not an enrollment status: use INITIALIZED, PENDING, \
                         REGISTERED, DISASSOCIATING or DEREGISTERING."
                    )));
                }
            }
            filters.push(Filter {
                field,
                values: values.clone(),
            });
        }
        let mut sort = Vec::with_capacity(self.sort_criteria.len());
        for criterion in &self.sort_criteria {
            let field = field("sortCriteria.member.key", &criterion.key)?;
            let descending = match required("sortCriteria.member.value", &criterion.value)?.as_str()
            {
                "ASC" => false,
                "DESC" => true,
                other => {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{other}' at \
                         'sortCriteria.member.value' failed to satisfy constraint: Member must \
                         satisfy enum value set: [ASC, DESC]"
                    )));
                }
            };
            if sort.iter().any(|s: &Sort| s.field == field) {
                return Err(ApiError::validation(format!(
                    "{} is given twice in SortCriteria.",
                    field.name()
                )));
            }
            sort.push(Sort { field, descending });
        }
        Ok(Search {
            filters,
            sort,
            limit: self.max_results.unwrap_or(DEFAULT_MAX_RESULTS),
            next_token: self.next_token,
        })
    }
}

/// A request naming a user: SendInvitation, RevokeInvitation, DeleteUser.
#[derive(Debug, Deserialize)]
pub struct UserRequest {
    #[serde(rename = "UserArn")]
    pub user_arn: Option<String>,
    #[serde(rename = "EnrollmentId")]
    pub enrollment_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PutInvitationConfigurationRequest {
    #[serde(rename = "OrganizationName")]
    pub organization_name: Option<String>,
    #[serde(rename = "ContactEmail")]
    pub contact_email: Option<String>,
    #[serde(rename = "PrivateSkillIds", default)]
    pub private_skill_ids: Vec<String>,
}

impl PutInvitationConfigurationRequest {
    pub fn check(self) -> Result<(String, Option<String>), ApiError> {
        let p = patterns()?;
        let name = required("organizationName", &self.organization_name)?;
        check("organizationName", name, 1, 100, Some(&p.organization_name))?;
        if let Some(email) = &self.contact_email {
            check("contactEmail", email, 1, 128, Some(&p.email))?;
        }
        at_most("privateSkillIds", &self.private_skill_ids, 3)?;
        for skill in &self.private_skill_ids {
            check(
                "privateSkillIds.member",
                skill,
                0,
                usize::MAX,
                Some(&p.skill_id),
            )?;
        }
        if !self.private_skill_ids.is_empty() {
            return Err(ApiError::validation(
                "Enroll has no skills: leave PrivateSkillIds out (the page people go to after \
                 joining is set on the console).",
            ));
        }
        Ok((name.clone(), self.contact_email))
    }
}

#[derive(Debug, Deserialize)]
pub struct TagResourceRequest {
    #[serde(rename = "Arn")]
    pub arn: Option<String>,
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<Tag>>,
}

impl TagResourceRequest {
    pub fn check(self) -> Result<(String, Vec<crate::users::tags::Tag>), ApiError> {
        let arn = required("arn", &self.arn)?;
        check_arn("arn", arn)?;
        let tags = check_tags("tags", required("tags", &self.tags)?)?;
        Ok((arn.clone(), tags))
    }
}

#[derive(Debug, Deserialize)]
pub struct UntagResourceRequest {
    #[serde(rename = "Arn")]
    pub arn: Option<String>,
    #[serde(rename = "TagKeys")]
    pub tag_keys: Option<Vec<String>>,
}

impl UntagResourceRequest {
    pub fn check(self) -> Result<(String, Vec<String>), ApiError> {
        let arn = required("arn", &self.arn)?;
        check_arn("arn", arn)?;
        let keys = required("tagKeys", &self.tag_keys)?;
        for key in keys {
            check("tagKeys.member", key, 1, 128, None)?;
            crate::users::tags::Tag::check_key(key)
                .map_err(|e| ApiError::validation(e.to_string()))?;
        }
        Ok((arn.clone(), keys.clone()))
    }
}

#[derive(Debug, Deserialize)]
pub struct ListTagsRequest {
    #[serde(rename = "Arn")]
    pub arn: Option<String>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i64>,
}

impl ListTagsRequest {
    /// The ARN, where to start (the position after the last key returned) and how many.
    pub fn check(self) -> Result<(String, Option<String>, usize), ApiError> {
        let arn = required("arn", &self.arn)?;
        check_arn("arn", arn)?;
        check_max_results(self.max_results)?;
        check_next_token(self.next_token.as_ref())?;
        let limit = usize::try_from(self.max_results.unwrap_or(50)).unwrap_or(50);
        Ok((arn.clone(), self.next_token, limit))
    }
}

#[derive(Debug, Serialize)]
pub struct SearchUsersResponse<'a> {
    #[serde(rename = "Users")]
    pub users: Vec<UserData<'a>>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    pub next_token: Option<&'a str>,
    #[serde(rename = "TotalCount")]
    pub total_count: i64,
}

#[derive(Debug, Serialize)]
pub struct UserData<'a> {
    #[serde(rename = "UserArn")]
    pub user_arn: String,
    #[serde(rename = "FirstName")]
    pub first_name: &'a str,
    #[serde(rename = "LastName")]
    pub last_name: &'a str,
    #[serde(rename = "Email")]
    pub email: &'a str,
    #[serde(rename = "EnrollmentStatus")]
    pub enrollment_status: &'static str,
    #[serde(rename = "EnrollmentId")]
    pub enrollment_id: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_patterns_compile_and_match_as_the_service_did() {
        let p = patterns().unwrap();
        assert!(p.email.is_match("ada.lovelace+x@example.co.uk"));
        assert!(!p.email.is_match("ada@localhost"));
        assert!(p.name.is_match("Zoë O'Brien-Ñúñez"));
        assert!(!p.name.is_match("<script>"));
        assert!(p.arn.is_match("arn:aws:a4b:::user/0190"));
        assert!(!p.arn.is_match("arn:aws:a4b:::/x"));
        assert!(p.user_id.is_match("ada@example.com"));
        assert!(!p.user_id.is_match("a b"));
    }
}
