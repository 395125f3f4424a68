//! SearchUsers of the Alexa for Business API: exact filters on its five keys, any
//! number of sort keys in either direction, and keyset paging with an opaque token.
//! The Users page's query (`list.rs`) serves a person; this one serves the API's
//! contract, over the same users, statuses and live invitations.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use sha2::{Digest, Sha256};

use super::counts::StatusCounts;
use super::list::UserRow;
use super::status::{
    EnrollmentStatus, UsersWithLiveInvitationSource, not_invited_expiry, users_with_live_invitation,
};
use crate::db::schema::{invitations, users};
use crate::db::{DbConnection, MultiBackend};

diesel::define_sql_function! {
    /// Lower-cases text (both engines have it).
    fn lower(text: Text) -> Text;
}

/// The keys SearchUsers filters and sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    UserId,
    FirstName,
    LastName,
    Email,
    EnrollmentStatus,
}

impl Field {
    pub const ALL: [Self; 5] = [
        Self::UserId,
        Self::FirstName,
        Self::LastName,
        Self::Email,
        Self::EnrollmentStatus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::UserId => "UserId",
            Self::FirstName => "FirstName",
            Self::LastName => "LastName",
            Self::Email => "Email",
            Self::EnrollmentStatus => "EnrollmentStatus",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The source's enrollment states; Enroll's statuses fold into the first three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiStatus {
    Initialized,
    Pending,
    Registered,
    /// Valid values of the model that no Enroll user is ever in.
    Disassociating,
    Deregistering,
}

impl ApiStatus {
    pub const ALL: [Self; 5] = [
        Self::Initialized,
        Self::Pending,
        Self::Registered,
        Self::Disassociating,
        Self::Deregistering,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Initialized => "INITIALIZED",
            Self::Pending => "PENDING",
            Self::Registered => "REGISTERED",
            Self::Disassociating => "DISASSOCIATING",
            Self::Deregistering => "DEREGISTERING",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Not invited is INITIALIZED, enrolled is REGISTERED, deactivated by the identity
    /// provider (links dead, the user kept until it removes them) is DEREGISTERING, and
    /// every other status (invited, not joined: sending, pending, expired, delivery
    /// failed) is PENDING.
    pub fn of(status: EnrollmentStatus) -> Self {
        match status {
            EnrollmentStatus::NotInvited => Self::Initialized,
            EnrollmentStatus::Enrolled => Self::Registered,
            EnrollmentStatus::Deactivated => Self::Deregistering,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Filter {
    pub field: Field,
    /// Any of these (exact; names and addresses case-insensitively).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub field: Field,
    pub descending: bool,
}

#[derive(Debug, Clone)]
pub struct Search {
    pub filters: Vec<Filter>,
    pub sort: Vec<Sort>,
    pub limit: i64,
    /// The NextToken of the previous page, as received.
    pub next_token: Option<String>,
}

/// A user as SearchUsers returns them.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(MultiBackend))]
pub struct Found {
    #[diesel(embed)]
    pub row: UserRow,
    #[diesel(select_expression = users::api_user_id)]
    pub api_user_id: Option<String>,
}

pub struct Results {
    pub users: Vec<(Found, ApiStatus)>,
    pub next_token: Option<String>,
    pub total: i64,
    /// These results as the API writes them, made once for every request that shares
    /// them (see [`crate::operations::Operations::search_users`]).
    pub answer: std::sync::OnceLock<bytes::Bytes>,
}

/// The NextToken could not have come from this search.
#[derive(Debug)]
pub struct BadToken;

type Source = UsersWithLiveInvitationSource;
type Condition = Box<dyn BoxableExpression<Source, MultiBackend, SqlType = Bool>>;
type Key = Box<dyn BoxableExpression<Source, MultiBackend, SqlType = Text>>;

/// The users page's own order when the caller names none: its index serves it.
const DEFAULT_SORT: SortKey = SortKey::NameKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Field(Field),
    NameKey,
    Id,
}

fn key(of: SortKey) -> Key {
    match of {
        SortKey::Field(Field::UserId) => Box::new(users::api_user_id.assume_not_null()),
        SortKey::Field(Field::FirstName) => Box::new(users::first_name),
        SortKey::Field(Field::LastName) => Box::new(users::last_name),
        SortKey::Field(Field::Email) => Box::new(users::email_key),
        // The same names as [`ApiStatus::of`] gives, so that keyset paging agrees.
        SortKey::Field(Field::EnrollmentStatus) => Box::new(
            case_when::<_, _, Text>(users::deactivated_at.is_not_null(), "DEREGISTERING")
                .when(users::enrolled_at.is_not_null(), "REGISTERED")
                .when(
                    invitations::expires_at.ge(not_invited_expiry()),
                    "INITIALIZED",
                )
                .otherwise("PENDING"),
        ),
        SortKey::NameKey => Box::new(users::name_key),
        SortKey::Id => Box::new(users::id),
    }
}

fn value_of(found: &Found, of: SortKey, status: ApiStatus) -> String {
    match of {
        SortKey::Field(Field::UserId) => found.api_user_id.clone().unwrap_or_default(),
        SortKey::Field(Field::FirstName) => found.row.first_name.clone(),
        SortKey::Field(Field::LastName) => found.row.last_name.clone(),
        SortKey::Field(Field::Email) => found.row.email_key.clone(),
        SortKey::Field(Field::EnrollmentStatus) => status.name().to_owned(),
        SortKey::NameKey => found.row.name_key.clone(),
        SortKey::Id => found.row.id.clone(),
    }
}

fn filter_condition(filter: &Filter, now: NaiveDateTime) -> Condition {
    let lowered: Vec<String> = filter.values.iter().map(|v| v.to_lowercase()).collect();
    match filter.field {
        Field::UserId => Box::new(
            users::api_user_id
                .assume_not_null()
                .eq_any(filter.values.clone()),
        ),
        Field::FirstName => Box::new(lower(users::first_name).eq_any(lowered)),
        Field::LastName => Box::new(lower(users::last_name).eq_any(lowered)),
        Field::Email => Box::new(users::email_key.eq_any(lowered)),
        Field::EnrollmentStatus => {
            let mut any: Condition = Box::new(diesel::dsl::sql::<Bool>("1 = 0"));
            for value in &filter.values {
                let wanted = match ApiStatus::parse(value) {
                    Some(ApiStatus::Initialized) => EnrollmentStatus::NotInvited.sql_filter(now),
                    Some(ApiStatus::Registered) => EnrollmentStatus::Enrolled.sql_filter(now),
                    Some(ApiStatus::Pending) => Box::new(
                        users::enrolled_at
                            .is_null()
                            .and(users::deactivated_at.is_null())
                            .and(invitations::expires_at.lt(not_invited_expiry())),
                    ),
                    Some(ApiStatus::Deregistering) => EnrollmentStatus::Deactivated.sql_filter(now),
                    _ => continue,
                };
                any = Box::new(any.or(wanted));
            }
            any
        }
    }
}

/// The order: the caller's keys, then a unique tie-break.
fn order_of(search: &Search) -> Vec<(SortKey, bool)> {
    let mut order: Vec<(SortKey, bool)> = search
        .sort
        .iter()
        .map(|s| (SortKey::Field(s.field), s.descending))
        .collect();
    if order.is_empty() {
        order.push((DEFAULT_SORT, false));
    }
    let last_descending = order.last().is_some_and(|(_, d)| *d);
    order.push((SortKey::Id, last_descending));
    order
}

/// Rows strictly after `values` in `order`: the first key's bound (an index range),
/// and then the usual expansion `k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...`.
fn after(order: &[(SortKey, bool)], values: &[String]) -> Condition {
    let beyond = |of: SortKey, descending: bool, value: &str| -> Condition {
        if descending {
            Box::new(key(of).lt(value.to_owned()))
        } else {
            Box::new(key(of).gt(value.to_owned()))
        }
    };
    let mut any: Condition = Box::new(diesel::dsl::sql::<Bool>("1 = 0"));
    for (i, ((of, descending), value)) in order.iter().zip(values).enumerate() {
        let mut step = beyond(*of, *descending, value);
        for ((earlier, _), earlier_value) in order.iter().zip(values).take(i) {
            step = Box::new(step.and(key(*earlier).eq(earlier_value.clone())));
        }
        any = Box::new(any.or(step));
    }
    let (first, descending) = order[0];
    let bound: Condition = if descending {
        Box::new(key(first).le(values[0].clone()))
    } else {
        Box::new(key(first).ge(values[0].clone()))
    };
    Box::new(bound.and(any))
}

/// What a NextToken carries: where the last page ended, the total counted on the
/// first page, and a fingerprint of the search it belongs to.
#[derive(serde::Serialize, serde::Deserialize)]
struct Token {
    /// Fingerprint of filters and order.
    f: String,
    /// The sort values of the last row, in order (its id last).
    v: Vec<String>,
    /// TotalCount, counted once per search.
    t: i64,
}

/// What identifies a page of results: the search, its page size and its token.
pub fn cache_key(search: &Search) -> String {
    format!(
        "{}|{}|{}",
        fingerprint(search),
        search.limit,
        search.next_token.as_deref().unwrap_or_default()
    )
}

fn fingerprint(search: &Search) -> String {
    let mut hash = Sha256::new();
    for filter in &search.filters {
        hash.update(filter.field.name());
        for value in &filter.values {
            hash.update([0]);
            hash.update(value);
        }
        hash.update([1]);
    }
    for sort in &search.sort {
        hash.update(sort.field.name());
        hash.update([u8::from(sort.descending)]);
    }
    URL_SAFE_NO_PAD.encode(&hash.finalize()[..12])
}

fn decode(text: &str, search: &Search, keys: usize) -> Result<Token, BadToken> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BadToken)?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| BadToken)?;
    let plain = token.v.iter().all(|v| !v.contains('\0'));
    if token.f != fingerprint(search) || token.v.len() != keys || !plain || token.t < 0 {
        return Err(BadToken);
    }
    Ok(token)
}

/// TotalCount from the Users page's status counts, when the search filters on status
/// alone (or not at all): no count of every user per request. `None` otherwise.
pub fn total_from_counts(search: &Search, counts: &StatusCounts) -> Option<i64> {
    if search
        .filters
        .iter()
        .any(|f| f.field != Field::EnrollmentStatus)
    {
        return None;
    }
    let not_invited = counts.of(EnrollmentStatus::NotInvited);
    let enrolled = counts.of(EnrollmentStatus::Enrolled);
    let deactivated = counts.of(EnrollmentStatus::Deactivated);
    let of = |status: ApiStatus| match status {
        ApiStatus::Initialized => not_invited,
        ApiStatus::Registered => enrolled,
        ApiStatus::Deregistering => deactivated,
        ApiStatus::Pending => counts.total() - not_invited - enrolled - deactivated,
        ApiStatus::Disassociating => 0,
    };
    // Values of one filter are alternatives; filters all apply.
    Some(
        [
            ApiStatus::Initialized,
            ApiStatus::Pending,
            ApiStatus::Registered,
        ]
        .into_iter()
        .filter(|status| {
            search.filters.iter().all(|f| {
                f.values
                    .iter()
                    .any(|v| ApiStatus::parse(v) == Some(*status))
            })
        })
        .map(of)
        .sum(),
    )
}

/// One page of SearchUsers. `known_total` is TotalCount when already known (see
/// [`total_from_counts`]); a NextToken carries the total of the first page.
pub fn search(
    conn: &mut DbConnection,
    search: &Search,
    now: NaiveDateTime,
    known_total: Option<i64>,
) -> QueryResult<Result<Results, BadToken>> {
    let order = order_of(search);
    let token = match &search.next_token {
        Some(text) => match decode(text, search, order.len()) {
            Ok(token) => Some(token),
            Err(bad) => return Ok(Err(bad)),
        },
        None => None,
    };
    let conditions = || search.filters.iter().map(|f| filter_condition(f, now));
    let total = match (&token, known_total) {
        (Some(token), _) => token.t,
        (None, Some(total)) => total,
        (None, None) => {
            let mut count = users_with_live_invitation()
                .select(diesel::dsl::count_star())
                .into_boxed();
            for condition in conditions() {
                count = count.filter(condition);
            }
            count.get_result(conn)?
        }
    };
    let mut rows = users_with_live_invitation()
        .select(Found::as_select())
        .into_boxed();
    for condition in conditions() {
        rows = rows.filter(condition);
    }
    if let Some(token) = &token {
        rows = rows.filter(after(&order, &token.v));
    }
    for (of, descending) in &order {
        rows = if *descending {
            rows.then_order_by(key(*of).desc())
        } else {
            rows.then_order_by(key(*of).asc())
        };
    }
    let mut found: Vec<Found> = rows.limit(search.limit + 1).load(conn)?;
    let more = found.len() as i64 > search.limit;
    found.truncate(usize::try_from(search.limit).unwrap_or(0));
    let users: Vec<(Found, ApiStatus)> = found
        .into_iter()
        .map(|f| {
            let status = ApiStatus::of(f.row.status(now));
            (f, status)
        })
        .collect();
    let next_token = match users.last() {
        Some((last, status)) if more => {
            let token = Token {
                f: fingerprint(search),
                v: order
                    .iter()
                    .map(|(of, _)| value_of(last, *of, *status))
                    .collect(),
                t: total,
            };
            serde_json::to_vec(&token)
                .ok()
                .map(|json| URL_SAFE_NO_PAD.encode(json))
        }
        _ => None,
    };
    Ok(Ok(Results {
        users,
        next_token,
        total,
        answer: std::sync::OnceLock::new(),
    }))
}
