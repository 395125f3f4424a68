//! The Users page query: search, status filter, sort, keyset (cursor) pagination.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::EnrollmentStatus;
use super::status::{StatusFacts, users_with_live_invitation};
use crate::db::schema::{invitations, users};
use crate::db::{DbConnection, MultiBackend};

pub const PAGE_SIZES: [i64; 3] = [25, 50, 100];
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_SEARCH_LENGTH: usize = 200;
pub const EXPIRING_SOON_DAYS: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Email,
    Invited,
}

impl SortKey {
    pub const ALL: [Self; 3] = [Self::Name, Self::Email, Self::Invited];

    pub fn slug(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Invited => "invited",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

impl Direction {
    pub fn slug(self) -> &'static str {
        match self {
            Self::Ascending => "asc",
            Self::Descending => "desc",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "asc" => Some(Self::Ascending),
            "desc" => Some(Self::Descending),
            _ => None,
        }
    }

    pub fn reversed(self) -> Self {
        match self {
            Self::Ascending => Self::Descending,
            Self::Descending => Self::Ascending,
        }
    }
}

/// A position in the list: the sort value and id of a row, opaque in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: SortKey,
    pub value: String,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}\u{1f}{}\u{1f}{}",
            self.sort.slug(),
            self.value,
            self.id
        ))
    }

    /// A cursor from another sort order, or junk, is ignored rather than an error.
    pub fn decode(text: &str, sort: SortKey) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '\u{1f}');
        let (slug, value, id) = (parts.next()?, parts.next()?, parts.next()?);
        (SortKey::parse(slug)? == sort).then(|| Self {
            sort,
            value: value.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// Which way to page from a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageFrom {
    Start,
    After(Cursor),
    Before(Cursor),
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub search: String,
    pub status: Option<EnrollmentStatus>,
    /// Only invitations still open that expire within [`EXPIRING_SOON_DAYS`].
    pub expiring_soon: bool,
    pub sort: SortKey,
    pub direction: Direction,
    pub from: PageFrom,
    pub per_page: i64,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            search: String::new(),
            status: None,
            expiring_soon: false,
            sort: SortKey::Name,
            direction: Direction::Ascending,
            from: PageFrom::Start,
            per_page: DEFAULT_PAGE_SIZE,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(check_for_backend(MultiBackend))]
pub struct UserRow {
    #[diesel(select_expression = users::id)]
    pub id: String,
    #[diesel(select_expression = users::first_name)]
    pub first_name: String,
    #[diesel(select_expression = users::last_name)]
    pub last_name: String,
    #[diesel(select_expression = users::email)]
    pub email: String,
    #[diesel(select_expression = users::email_key)]
    pub email_key: String,
    #[diesel(select_expression = users::name_key)]
    pub name_key: String,
    #[diesel(select_expression = users::created_at)]
    pub created_at: NaiveDateTime,
    #[diesel(select_expression = users::enrolled_at)]
    pub enrolled_at: Option<NaiveDateTime>,
    #[diesel(select_expression = invitations::created_at)]
    pub last_sent_at: NaiveDateTime,
    #[diesel(select_expression = invitations::expires_at)]
    pub expires_at: NaiveDateTime,
    #[diesel(select_expression = invitations::sent_at)]
    pub sent_at: Option<NaiveDateTime>,
    #[diesel(select_expression = invitations::delivery_failed_at)]
    pub delivery_failed_at: Option<NaiveDateTime>,
    #[diesel(select_expression = invitations::delivery_error)]
    pub delivery_error: Option<String>,
}

impl UserRow {
    pub fn status(&self, now: NaiveDateTime) -> EnrollmentStatus {
        EnrollmentStatus::derive(
            &StatusFacts {
                enrolled_at: self.enrolled_at,
                expires_at: self.expires_at,
                sent_at: self.sent_at,
                delivery_failed_at: self.delivery_failed_at,
            },
            now,
        )
    }

    fn cursor(&self, sort: SortKey) -> Cursor {
        let value = match sort {
            SortKey::Name => self.name_key.clone(),
            SortKey::Email => self.email_key.clone(),
            SortKey::Invited => crate::time_format::machine(self.created_at),
        };
        Cursor {
            sort,
            value,
            id: self.id.clone(),
        }
    }
}

pub struct Page {
    pub rows: Vec<UserRow>,
    /// Cursors for the neighbouring pages, when there are any.
    pub next: Option<Cursor>,
    pub previous: Option<Cursor>,
}

type BoxedUsers<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::Select<
        super::status::UsersWithLiveInvitation,
        diesel::dsl::AsSelect<UserRow, MultiBackend>,
    >,
    MultiBackend,
>;

fn filtered(query: &ListQuery, now: NaiveDateTime) -> BoxedUsers<'static> {
    let mut boxed = users_with_live_invitation()
        .select(UserRow::as_select())
        .into_boxed();
    if let Some(pattern) = search_pattern(&query.search) {
        boxed = boxed.filter(users::search_key.like(pattern).escape('\\'));
    }
    if let Some(status) = query.status {
        boxed = boxed.filter(status.sql_filter(now));
    }
    if query.expiring_soon {
        boxed = boxed
            .filter(users::enrolled_at.is_null())
            .filter(invitations::delivery_failed_at.is_null())
            .filter(invitations::expires_at.gt(now))
            .filter(invitations::expires_at.le(now + chrono::TimeDelta::days(EXPIRING_SOON_DAYS)));
    }
    boxed
}

/// How many users match the search and expire soon.
pub fn expiring_soon_count(
    conn: &mut DbConnection,
    search: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    let query = ListQuery {
        search: search.to_owned(),
        expiring_soon: true,
        ..ListQuery::default()
    };
    filtered(&query, now).count().get_result(conn)
}

/// Users who never joined and whose invitation expired before `cutoff`: what
/// "Remove expired invitations" removes.
pub fn expired_before(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Vec<(String, String, String, String)>> {
    users_with_live_invitation()
        .filter(users::enrolled_at.is_null())
        .filter(invitations::expires_at.le(cutoff))
        .order((users::name_key, users::id))
        .select((users::id, users::first_name, users::last_name, users::email))
        .load(conn)
}

/// `%term%` with LIKE's wildcards in the term taken literally.
fn search_pattern(search: &str) -> Option<String> {
    let term = search.trim().to_lowercase();
    if term.is_empty() {
        return None;
    }
    let escaped: String = term
        .chars()
        .take(MAX_SEARCH_LENGTH)
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Some(format!("%{escaped}%"))
}

/// One page of users, in the requested order, from the requested position.
pub fn page(conn: &mut DbConnection, query: &ListQuery, now: NaiveDateTime) -> QueryResult<Page> {
    // Paging backwards reads the rows before the cursor in reverse, then flips them.
    let (cursor, backwards) = match &query.from {
        PageFrom::Start => (None, false),
        PageFrom::After(c) => (Some(c), false),
        PageFrom::Before(c) => (Some(c), true),
    };
    let direction = if backwards {
        query.direction.reversed()
    } else {
        query.direction
    };
    let mut boxed = filtered(query, now);
    if let Some(cursor) = cursor {
        boxed = past_cursor(boxed, cursor, direction);
    }
    boxed = ordered(boxed, query.sort, direction);
    let mut rows = boxed.limit(query.per_page + 1).load::<UserRow>(conn)?;
    let has_more = rows.len() as i64 > query.per_page;
    rows.truncate(usize::try_from(query.per_page).unwrap_or(0));
    if backwards {
        rows.reverse();
    }
    let first = rows.first().map(|r| r.cursor(query.sort));
    let last = rows.last().map(|r| r.cursor(query.sort));
    let (next, previous) = match (&query.from, backwards) {
        (PageFrom::Start, _) => (has_more.then_some(last).flatten(), None),
        (_, false) => (has_more.then_some(last).flatten(), first),
        (_, true) => (last, has_more.then_some(first).flatten()),
    };
    Ok(Page {
        rows,
        next,
        previous,
    })
}

fn ordered(boxed: BoxedUsers<'static>, sort: SortKey, direction: Direction) -> BoxedUsers<'static> {
    use Direction::*;
    match (sort, direction) {
        (SortKey::Name, Ascending) => boxed.order((users::name_key.asc(), users::id.asc())),
        (SortKey::Name, Descending) => boxed.order((users::name_key.desc(), users::id.desc())),
        (SortKey::Email, Ascending) => boxed.order(users::email_key.asc()),
        (SortKey::Email, Descending) => boxed.order(users::email_key.desc()),
        (SortKey::Invited, Ascending) => boxed.order((users::created_at.asc(), users::id.asc())),
        (SortKey::Invited, Descending) => boxed.order((users::created_at.desc(), users::id.desc())),
    }
}

fn past_cursor(
    boxed: BoxedUsers<'static>,
    cursor: &Cursor,
    direction: Direction,
) -> BoxedUsers<'static> {
    let forward = direction == Direction::Ascending;
    let (value, id) = (cursor.value.clone(), cursor.id.clone());
    match cursor.sort {
        SortKey::Name if forward => boxed.filter(
            users::name_key
                .gt(value.clone())
                .or(users::name_key.eq(value).and(users::id.gt(id))),
        ),
        SortKey::Name => boxed.filter(
            users::name_key
                .lt(value.clone())
                .or(users::name_key.eq(value).and(users::id.lt(id))),
        ),
        // Email keys are unique: no tie-break needed.
        SortKey::Email if forward => boxed.filter(users::email_key.gt(value)),
        SortKey::Email => boxed.filter(users::email_key.lt(value)),
        SortKey::Invited => {
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(&value) else {
                return boxed;
            };
            let at = at.naive_utc();
            if forward {
                boxed.filter(
                    users::created_at
                        .gt(at)
                        .or(users::created_at.eq(at).and(users::id.gt(id))),
                )
            } else {
                boxed.filter(
                    users::created_at
                        .lt(at)
                        .or(users::created_at.eq(at).and(users::id.lt(id))),
                )
            }
        }
    }
}

/// How many users of each status match the search.
pub fn status_counts(
    conn: &mut DbConnection,
    search: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<(EnrollmentStatus, i64)>> {
    EnrollmentStatus::ALL
        .into_iter()
        .map(|status| {
            let query = ListQuery {
                search: search.to_owned(),
                status: Some(status),
                ..ListQuery::default()
            };
            let count = filtered(&query, now).count().get_result::<i64>(conn)?;
            Ok((status, count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let cursor = Cursor {
            sort: SortKey::Name,
            value: "lovelace ada".into(),
            id: "0190-abc".into(),
        };
        assert_eq!(
            Cursor::decode(&cursor.encode(), SortKey::Name),
            Some(cursor.clone())
        );
        assert_eq!(Cursor::decode(&cursor.encode(), SortKey::Email), None);
        assert_eq!(Cursor::decode("!!!", SortKey::Name), None);
    }

    #[test]
    fn search_wildcards_are_literal() {
        assert_eq!(search_pattern("  "), None);
        assert_eq!(search_pattern("Ada"), Some("%ada%".into()));
        assert_eq!(search_pattern("50%_off"), Some("%50\\%\\_off%".into()));
    }
}
