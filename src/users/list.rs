//! The Users page query: search, status filter, sort, keyset (cursor) pagination.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::EnrollmentStatus;
use super::status::{
    StatusFacts, StatusFilter, StatusFlags, expiring_soon_filter, users_with_live_invitation,
};
use crate::db::schema::{invitations, users};
use crate::db::{DbConnection, Engine, MultiBackend, Stamp, engine_of};

/// Orders a boxed query of users (alone or joined with their invitation) by a sort key,
/// with the id as tie-break. Within one status (see `page_by_status`), users are in name
/// order.
macro_rules! order_by {
    ($query:expr, $sort:expr, $direction:expr) => {{
        let query = $query;
        match ($sort, $direction) {
            (SortKey::Name | SortKey::Status, Direction::Ascending) => {
                query.order((users::name_key.asc(), users::id.asc()))
            }
            (SortKey::Name | SortKey::Status, Direction::Descending) => {
                query.order((users::name_key.desc(), users::id.desc()))
            }
            (SortKey::Email, Direction::Ascending) => query.order(users::email_key.asc()),
            (SortKey::Email, Direction::Descending) => query.order(users::email_key.desc()),
            (SortKey::Invited, Direction::Ascending) => {
                query.order((users::created_at.asc(), users::id.asc()))
            }
            (SortKey::Invited, Direction::Descending) => {
                query.order((users::created_at.desc(), users::id.desc()))
            }
        }
    }};
}

/// A condition on users, alone or joined with their live invitation.
type UsersCondition<QS> = Box<dyn BoxableExpression<QS, MultiBackend, SqlType = Bool>>;

pub const PAGE_SIZES: [i64; 3] = [25, 50, 100];
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_SEARCH_LENGTH: usize = 200;
/// Shorter terms have no trigram for the index: each would be a scan of every user plus
/// a count, and each a view of its own for the page cache. They are not run.
pub const MIN_SEARCH_CHARS: usize = 3;

/// Whether a typed term is searched for (an empty one is no search at all).
pub fn is_searchable(term: &str) -> bool {
    term.trim().chars().count() >= MIN_SEARCH_CHARS
}
/// Between the status and the name in a status-sorted cursor.
pub(crate) const STATUS_SEPARATOR: char = '\u{1e}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Email,
    Invited,
    /// By enrollment status (in the order of [`EnrollmentStatus::ALL`]), then by name.
    Status,
}

impl SortKey {
    pub const ALL: [Self; 4] = [Self::Name, Self::Email, Self::Invited, Self::Status];

    pub fn slug(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Invited => "invited",
            Self::Status => "status",
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

    /// A cursor from another sort order, or junk, is ignored rather than an error. The
    /// URL is the client's to edit, so the parts are checked for what a real cursor
    /// holds (PostgreSQL refuses text with NUL in it outright).
    pub fn decode(text: &str, sort: SortKey) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '\u{1f}');
        let (slug, value, id) = (parts.next()?, parts.next()?, parts.next()?);
        let plain = |c: char| !c.is_control() || c == STATUS_SEPARATOR;
        let id = uuid::Uuid::parse_str(id).ok()?;
        (SortKey::parse(slug)? == sort && value.chars().all(plain)).then(|| Self {
            sort,
            value: value.to_owned(),
            id: id.to_string(),
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

impl ListQuery {
    /// Where to read from, whether backwards, and in which order. Paging backwards reads
    /// the rows before the cursor in reverse, then flips them.
    pub(crate) fn reading_order(&self) -> (Option<&Cursor>, bool, Direction) {
        let (cursor, backwards) = match &self.from {
            PageFrom::Start => (None, false),
            PageFrom::After(c) => (Some(c), false),
            PageFrom::Before(c) => (Some(c), true),
        };
        let direction = if backwards {
            self.direction.reversed()
        } else {
            self.direction
        };
        (cursor, backwards, direction)
    }
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
    #[diesel(select_expression = users::created_at, deserialize_as = Stamp)]
    pub created_at: NaiveDateTime,
    // Whether, not when: no list shows when a user joined, was deactivated, or when the
    // invitation went out or bounced, and the search index keeps only whether.
    #[diesel(embed)]
    pub flags: StatusFlags,
    /// The credential that created the user (an identity provider), by name.
    #[diesel(select_expression = users::provisioned_by)]
    pub provisioned_by: Option<String>,
    #[diesel(select_expression = invitations::expires_at, deserialize_as = Stamp)]
    pub expires_at: NaiveDateTime,
    #[diesel(select_expression = invitations::delivery_error)]
    pub delivery_error: Option<String>,
}

impl UserRow {
    pub fn status(&self, now: NaiveDateTime) -> EnrollmentStatus {
        EnrollmentStatus::derive(
            &StatusFacts {
                flags: self.flags,
                expires_at: self.expires_at,
            },
            now,
        )
    }

    /// Whether the invitation is still open and expires within
    /// [`super::status::EXPIRING_SOON_DAYS`] (what `expiring_soon_filter` selects).
    pub fn expires_soon(&self, now: NaiveDateTime) -> bool {
        matches!(
            self.status(now),
            EnrollmentStatus::Pending | EnrollmentStatus::Sending
        ) && self.expires_at <= now + chrono::TimeDelta::days(super::status::EXPIRING_SOON_DAYS)
    }

    fn cursor(&self, sort: SortKey, now: NaiveDateTime) -> Cursor {
        let value = match sort {
            SortKey::Name => self.name_key.clone(),
            SortKey::Email => self.email_key.clone(),
            SortKey::Invited => crate::time_format::machine_precise(self.created_at),
            SortKey::Status => format!(
                "{}{STATUS_SEPARATOR}{}",
                self.status(now).slug(),
                self.name_key
            ),
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

impl Page {
    /// Whether this page, read for `query`, shows every user its search matches (the
    /// first page, with nothing after it and no status filter).
    pub fn holds_every_match(&self, query: &ListQuery) -> bool {
        query.from == PageFrom::Start
            && self.next.is_none()
            && query.status.is_none()
            && !query.expiring_soon
    }
}

type BoxedUsers<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::Select<
        super::status::UsersWithLiveInvitation,
        diesel::dsl::AsSelect<UserRow, MultiBackend>,
    >,
    MultiBackend,
>;

fn filtered(query: &ListQuery, now: NaiveDateTime, engine: Engine) -> BoxedUsers<'static> {
    let mut boxed = users_with_live_invitation()
        .select(UserRow::as_select())
        .into_boxed();
    if let Some(search) = search_condition(&query.search, engine) {
        boxed = boxed.filter(search);
    }
    if let Some(status) = query.status {
        boxed = boxed.filter(status.sql_filter(now));
    }
    if query.expiring_soon {
        boxed = boxed.filter(expiring_soon_filter(now));
    }
    boxed
}

/// Users who never joined and whose invitation expired before `cutoff`: what
/// "Remove expired invitations" removes.
pub fn expired_before(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Vec<(String, String, String, String)>> {
    users_with_live_invitation()
        .filter(super::status::expired_by(cutoff))
        .order((users::name_key, users::id))
        .select((users::id, users::first_name, users::last_name, users::email))
        .load(conn)
}

/// The users a search names: `tag:Key=Value` by their tag, anything else as a
/// substring of names and addresses, through the engine's trigram index. Terms shorter
/// than [`MIN_SEARCH_CHARS`] filter nothing (the web layer says so).
fn search_condition<QS>(search: &str, engine: Engine) -> Option<UsersCondition<QS>> {
    if let Some(tag) = super::tags::Tag::from_search(search) {
        // Written out: a boxed subselect cannot be proven uncorrelated for every QS.
        return Some(Box::new(
            diesel::dsl::sql::<Bool>(
                "users.id IN (SELECT user_tags.user_id FROM user_tags \
                 WHERE user_tags.tag_key = ",
            )
            .bind::<diesel::sql_types::Text, _>(tag.key().to_owned())
            .sql(" AND user_tags.tag_value = ")
            .bind::<diesel::sql_types::Text, _>(tag.value().to_owned())
            .sql(")"),
        ));
    }
    let term = search_term(search)?;
    let like_pattern = format!("%{}%", escape_like(&term));
    Some(crate::db::search::users_containing(
        engine,
        &term,
        like_pattern,
    ))
}

/// The substring a search looks for (lower-cased, at most [`MAX_SEARCH_LENGTH`]), if it
/// is long enough to be searched.
pub(crate) fn search_term(search: &str) -> Option<String> {
    let term: String = search
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_SEARCH_LENGTH)
        .collect();
    is_searchable(&term).then_some(term)
}

/// How many users the search matches, counted no further than `at_most`: read from the
/// trigram index (or the tags) alone, without joining or looking at any user.
pub fn search_matches(conn: &mut DbConnection, search: &str, at_most: i64) -> QueryResult<i64> {
    use diesel::sql_types::{BigInt, Text};
    if let Some(tag) = super::tags::Tag::from_search(search) {
        return diesel::select(
            diesel::dsl::sql::<BigInt>(
                "(SELECT count(*) FROM (SELECT 1 FROM user_tags WHERE user_tags.tag_key = ",
            )
            .bind::<Text, _>(tag.key().to_owned())
            .sql(" AND user_tags.tag_value = ")
            .bind::<Text, _>(tag.value().to_owned())
            .sql(" LIMIT ")
            .bind::<BigInt, _>(at_most)
            .sql(") AS tagged)"),
        )
        .get_result(conn);
    }
    let Some(term) = search_term(search) else {
        return Ok(0);
    };
    let like_pattern = format!("%{}%", escape_like(&term));
    crate::db::search::count_containing(conn, &term, like_pattern, at_most)
}

/// The term with LIKE's wildcards taken literally.
fn escape_like(term: &str) -> String {
    term.chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// One page of users, in the requested order, from the requested position.
pub fn page(conn: &mut DbConnection, query: &ListQuery, now: NaiveDateTime) -> QueryResult<Page> {
    if query.sort == SortKey::Status {
        return page_by_status(conn, query, now);
    }
    let (cursor, backwards, direction) = query.reading_order();
    let engine = engine_of(conn);
    let mut boxed = match search_condition::<users::table>(&query.search, engine) {
        // A search with no filter on the invitation is paged on `users` alone, and only
        // the page's rows are joined: a broad search ("ove", 2,000 matches at 100,000
        // users) then sorts its matches from one index instead of joining every one.
        Some(search) if query.status.is_none() && !query.expiring_soon => {
            let mut matches = users::table.select(users::id).filter(search).into_boxed();
            if let Some(condition) = cursor.and_then(|c| cursor_condition(c, direction)) {
                matches = matches.filter(condition);
            }
            let ids: Vec<String> = order_by!(matches, query.sort, direction)
                .limit(query.per_page + 1)
                .load(conn)?;
            users_with_live_invitation()
                .select(UserRow::as_select())
                .filter(users::id.eq_any(ids))
                .into_boxed()
        }
        _ => {
            let mut boxed = filtered(query, now, engine);
            if let Some(condition) = cursor.and_then(|c| cursor_condition(c, direction)) {
                boxed = boxed.filter(condition);
            }
            boxed
        }
    };
    boxed = order_by!(boxed, query.sort, direction);
    let rows = boxed.limit(query.per_page + 1).load::<UserRow>(conn)?;
    Ok(finish_page(rows, query, backwards, now))
}

/// A row of a page the search index found: made from the index, or to be read.
pub enum FoundRow {
    Made(Box<UserRow>),
    /// By its id: a row the index does not hold all of.
    ToRead(String),
}

/// The page of the rows the search index found in `query`'s reading order; those it
/// could not make are read by id.
/// The page of what the index found, when it made every row itself; otherwise the rows
/// back, for [`page_of_found`] to read those it could not make.
pub fn page_if_whole(
    query: &ListQuery,
    found: Vec<FoundRow>,
    now: NaiveDateTime,
) -> Result<Page, Vec<FoundRow>> {
    if found.iter().any(|row| matches!(row, FoundRow::ToRead(_))) {
        return Err(found);
    }
    let (_, backwards, _) = query.reading_order();
    let rows = found
        .into_iter()
        .filter_map(|row| match row {
            FoundRow::Made(row) => Some(*row),
            FoundRow::ToRead(_) => None,
        })
        .collect();
    Ok(finish_page(rows, query, backwards, now))
}

pub fn page_of_found(
    conn: &mut DbConnection,
    query: &ListQuery,
    found: Vec<FoundRow>,
    now: NaiveDateTime,
) -> QueryResult<Page> {
    let (_, backwards, _) = query.reading_order();
    let to_read: Vec<&String> = found
        .iter()
        .filter_map(|row| match row {
            FoundRow::ToRead(id) => Some(id),
            FoundRow::Made(_) => None,
        })
        .collect();
    let mut read: std::collections::HashMap<String, UserRow> = if to_read.is_empty() {
        std::collections::HashMap::new()
    } else {
        users_with_live_invitation()
            .select(UserRow::as_select())
            .filter(users::id.eq_any(to_read))
            .load::<UserRow>(conn)?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect()
    };
    let rows = found
        .into_iter()
        .filter_map(|row| match row {
            FoundRow::Made(row) => Some(*row),
            // Gone since the index last looked: not shown.
            FoundRow::ToRead(id) => read.remove(&id),
        })
        .collect();
    Ok(finish_page(rows, query, backwards, now))
}

/// Sorting by status walks the statuses in order, each sorted by name, so that every
/// step is an indexed, filtered query rather than a sort of all users.
fn page_by_status(
    conn: &mut DbConnection,
    query: &ListQuery,
    now: NaiveDateTime,
) -> QueryResult<Page> {
    let engine = engine_of(conn);
    let (cursor, backwards, direction) = query.reading_order();
    let position = cursor.and_then(|c| {
        let (status, name) = c.value.split_once(STATUS_SEPARATOR)?;
        Some((
            EnrollmentStatus::from_slug(status)?,
            name.to_owned(),
            c.id.clone(),
        ))
    });
    let mut statuses: Vec<EnrollmentStatus> = match query.status {
        Some(status) => vec![status],
        None => EnrollmentStatus::ALL.to_vec(),
    };
    if direction == Direction::Descending {
        statuses.reverse();
    }
    let begin = position
        .as_ref()
        .and_then(|(status, ..)| statuses.iter().position(|s| s == status))
        .unwrap_or(0);
    let wanted = usize::try_from(query.per_page + 1).unwrap_or(1);
    let mut rows = Vec::with_capacity(wanted);
    for (step, status) in statuses[begin..].iter().enumerate() {
        let mut boxed = filtered(query, now, engine).filter(status.sql_filter(now));
        if step == 0
            && let Some((_, name, id)) = &position
        {
            let within = Cursor {
                sort: SortKey::Name,
                value: name.clone(),
                id: id.clone(),
            };
            if let Some(condition) = cursor_condition(&within, direction) {
                boxed = boxed.filter(condition);
            }
        }
        let remaining = i64::try_from(wanted - rows.len()).unwrap_or(0);
        rows.extend(
            order_by!(boxed, SortKey::Name, direction)
                .limit(remaining)
                .load::<UserRow>(conn)?,
        );
        if rows.len() >= wanted {
            break;
        }
    }
    Ok(finish_page(rows, query, backwards, now))
}

/// Trims the one extra row read to learn whether there is more, restores the display
/// order, and works out the neighbouring pages' cursors.
fn finish_page(
    mut rows: Vec<UserRow>,
    query: &ListQuery,
    backwards: bool,
    now: NaiveDateTime,
) -> Page {
    let has_more = rows.len() as i64 > query.per_page;
    rows.truncate(usize::try_from(query.per_page).unwrap_or(0));
    if backwards {
        rows.reverse();
    }
    let first = rows.first().map(|r| r.cursor(query.sort, now));
    let last = rows.last().map(|r| r.cursor(query.sort, now));
    let (next, previous) = match (&query.from, backwards) {
        (PageFrom::Start, _) => (has_more.then_some(last).flatten(), None),
        (_, false) => (has_more.then_some(last).flatten(), first),
        (_, true) => (last, has_more.then_some(first).flatten()),
    };
    Page {
        rows,
        next,
        previous,
    }
}

/// Rows strictly after the cursor in `direction`, on users alone or joined. Written as
/// `key >= v AND (key > v OR id > i)` rather than `key > v OR (key = v AND id > i)`: the
/// first half is an index range on both engines, where the plain OR makes SQLite scan
/// from the start. None for a cursor that bounds nothing here (status cursors are split
/// by `page_by_status`; an unreadable time).
fn cursor_condition<QS>(cursor: &Cursor, direction: Direction) -> Option<UsersCondition<QS>>
where
    users::id: SelectableExpression<QS>,
    users::name_key: SelectableExpression<QS>,
    users::email_key: SelectableExpression<QS>,
    users::created_at: SelectableExpression<QS>,
{
    let forward = direction == Direction::Ascending;
    let (value, id) = (cursor.value.clone(), cursor.id.clone());
    match cursor.sort {
        SortKey::Status => None,
        SortKey::Name if forward => Some(Box::new(
            users::name_key
                .ge(value.clone())
                .and(users::name_key.gt(value).or(users::id.gt(id))),
        )),
        SortKey::Name => Some(Box::new(
            users::name_key
                .le(value.clone())
                .and(users::name_key.lt(value).or(users::id.lt(id))),
        )),
        // Email keys are unique: no tie-break needed.
        SortKey::Email if forward => Some(Box::new(users::email_key.gt(value))),
        SortKey::Email => Some(Box::new(users::email_key.lt(value))),
        SortKey::Invited => {
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(&value) else {
                return None;
            };
            let at = at.naive_utc();
            Some(if forward {
                Box::new(
                    users::created_at
                        .ge(at)
                        .and(users::created_at.gt(at).or(users::id.gt(id))),
                )
            } else {
                Box::new(
                    users::created_at
                        .le(at)
                        .and(users::created_at.lt(at).or(users::id.lt(id))),
                )
            })
        }
    }
}

/// How many users matching the search (everyone when it is empty) have each status, and
/// how many expire soon: one pass, counted by the database.
pub fn status_counts(
    conn: &mut DbConnection,
    search: &str,
    now: NaiveDateTime,
) -> QueryResult<(Vec<(EnrollmentStatus, i64)>, i64)> {
    use diesel::dsl::{case_when, sum};
    use diesel::sql_types::Integer;
    let query = ListQuery {
        search: search.to_owned(),
        ..ListQuery::default()
    };
    let matching =
        |condition: StatusFilter| sum(case_when::<_, _, Integer>(condition, 1).otherwise(0));
    let [
        not_invited,
        pending,
        sending,
        expired,
        failed,
        enrolled,
        deactivated,
    ] = EnrollmentStatus::ALL;
    // SUM over no rows is NULL.
    type Sums = (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let counts: Sums = filtered(&query, now, engine_of(conn))
        .select((
            matching(not_invited.sql_filter(now)),
            matching(pending.sql_filter(now)),
            matching(sending.sql_filter(now)),
            matching(expired.sql_filter(now)),
            matching(failed.sql_filter(now)),
            matching(enrolled.sql_filter(now)),
            matching(deactivated.sql_filter(now)),
            matching(expiring_soon_filter(now)),
        ))
        .first(conn)?;
    let (n, a, b, c, d, e, f, soon) = counts;
    Ok((
        EnrollmentStatus::ALL
            .into_iter()
            .zip([n, a, b, c, d, e, f])
            .map(|(status, n)| (status, n.unwrap_or(0)))
            .collect(),
        soon.unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let cursor = Cursor {
            sort: SortKey::Name,
            value: "lovelace ada".into(),
            id: "019ac0de-7a2b-7c3d-8e4f-0123456789ab".into(),
        };
        assert_eq!(
            Cursor::decode(&cursor.encode(), SortKey::Name),
            Some(cursor.clone())
        );
        assert_eq!(Cursor::decode(&cursor.encode(), SortKey::Email), None);
        assert_eq!(Cursor::decode("!!!", SortKey::Name), None);
        let with = |value: &str, id: &str| {
            Cursor {
                value: value.into(),
                id: id.into(),
                ..cursor.clone()
            }
            .encode()
        };
        assert_eq!(
            Cursor::decode(&with("a\0b", &cursor.id), SortKey::Name),
            None
        );
        assert_eq!(Cursor::decode(&with("ab", "x\0y"), SortKey::Name), None);
    }

    #[test]
    fn search_wildcards_are_literal() {
        assert_eq!(escape_like("ada"), "ada");
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
