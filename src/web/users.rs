//! The Users page ("Resources › Users"), and the two actions on selected rows:
//! Resend invitation and Remove user.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::invite::log_links;
use super::layout::{ConsolePage, Layout, Section};
use super::{AppState, safe_return_path, see_other};
use crate::error::AppError;
use crate::settings::InvitationSettings;
use crate::time_format;
use crate::users::counts::StatusCounts;
use crate::users::history::{self, Tone};
use crate::users::invitations::{self, Change, Removal, UserIdentity};
use crate::users::list::{self, Cursor, Direction, ListQuery, PageFrom, SortKey};
use crate::users::{EnrollmentStatus, UserLabel};

/// Selecting more rows than this at once is refused (a page shows at most 100).
const MAX_SELECTION: usize = 1000;

#[derive(Deserialize, Default)]
pub struct ListParams {
    q: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
    before: Option<String>,
    per_page: Option<String>,
}

impl ListParams {
    /// Unknown or malformed values fall back to defaults: a stale bookmark still opens.
    fn to_query(&self) -> ListQuery {
        let sort = self
            .sort
            .as_deref()
            .and_then(SortKey::parse)
            .unwrap_or(SortKey::Name);
        let from = match (&self.after, &self.before) {
            (Some(after), _) => Cursor::decode(after, sort).map(PageFrom::After),
            (None, Some(before)) => Cursor::decode(before, sort).map(PageFrom::Before),
            (None, None) => None,
        }
        .unwrap_or(PageFrom::Start);
        ListQuery {
            search: super::plain_text(
                self.q.as_deref().unwrap_or_default(),
                list::MAX_SEARCH_LENGTH,
            ),
            status: self.status.as_deref().and_then(EnrollmentStatus::from_slug),
            expiring_soon: self.status.as_deref() == Some(EXPIRING_SOON),
            sort,
            direction: self
                .dir
                .as_deref()
                .and_then(Direction::parse)
                .unwrap_or(Direction::Ascending),
            from,
            per_page: self
                .per_page
                .as_deref()
                .and_then(|p| p.parse().ok())
                .filter(|p| list::PAGE_SIZES.contains(p))
                .unwrap_or(list::DEFAULT_PAGE_SIZE),
        }
    }
}

/// Builds /users URLs that keep the current view and change one thing.
struct ViewUrl<'a> {
    query: &'a ListQuery,
}

/// The `status` value of the "Expires within 3 days" filter.
const EXPIRING_SOON: &str = "expiring_soon";

impl ViewUrl<'_> {
    /// The `status` value of the current view.
    fn status(&self) -> Option<&'static str> {
        if self.query.expiring_soon {
            Some(EXPIRING_SOON)
        } else {
            self.query.status.map(EnrollmentStatus::slug)
        }
    }

    fn build(
        &self,
        status: Option<&str>,
        sort: SortKey,
        direction: Direction,
        from: Option<(&str, String)>,
    ) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if !self.query.search.trim().is_empty() {
            url.append_pair("q", self.query.search.trim());
        }
        if let Some(status) = status {
            url.append_pair("status", status);
        }
        if sort != SortKey::Name {
            url.append_pair("sort", sort.slug());
        }
        if direction != Direction::Ascending {
            url.append_pair("dir", direction.slug());
        }
        if self.query.per_page != list::DEFAULT_PAGE_SIZE {
            url.append_pair("per_page", &self.query.per_page.to_string());
        }
        if let Some((name, value)) = from {
            url.append_pair(name, &value);
        }
        let query = url.finish();
        if query.is_empty() {
            "/users".to_owned()
        } else {
            format!("/users?{query}")
        }
    }

    fn current(&self) -> String {
        let from = match &self.query.from {
            PageFrom::Start => None,
            PageFrom::After(c) => Some(("after", c.encode())),
            PageFrom::Before(c) => Some(("before", c.encode())),
        };
        self.build(self.status(), self.query.sort, self.query.direction, from)
    }

    fn with_status(&self, status: Option<&str>) -> String {
        self.build(status, self.query.sort, self.query.direction, None)
    }

    /// Sorting by a column again flips its direction.
    fn sorted_by(&self, sort: SortKey) -> String {
        let direction = if self.query.sort == sort {
            self.query.direction.reversed()
        } else {
            Direction::Ascending
        };
        self.build(self.status(), sort, direction, None)
    }

    fn page(&self, name: &str, cursor: &Cursor) -> String {
        self.build(
            self.status(),
            self.query.sort,
            self.query.direction,
            Some((name, cursor.encode())),
        )
    }
}

struct UserView {
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    status_label: &'static str,
    status_class: &'static str,
    invited: String,
    invited_machine: String,
    expires: String,
    expires_machine: String,
    expires_relative: String,
    show_expiry: bool,
    delivery_error: Option<String>,
}

impl UserView {
    fn new(row: &list::UserRow, now: chrono::NaiveDateTime) -> Self {
        let status = row.status(now);
        Self {
            id: row.id.clone(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            email: row.email.clone(),
            status_label: status.label(),
            status_class: status.css_class(),
            invited: time_format::short(row.created_at),
            invited_machine: time_format::machine(row.created_at),
            expires: time_format::short(row.expires_at),
            expires_machine: time_format::machine(row.expires_at),
            expires_relative: time_format::relative(row.expires_at, now),
            show_expiry: status != EnrollmentStatus::Enrolled,
            delivery_error: (status == EnrollmentStatus::DeliveryFailed)
                .then(|| row.delivery_error.clone())
                .flatten(),
        }
    }
}

struct StatusChip {
    label: &'static str,
    count: i64,
    url: String,
    selected: bool,
}

struct PageSize {
    size: i64,
    selected: bool,
}

struct SortHeader {
    label: &'static str,
    url: String,
    /// "ascending"/"descending" for aria-sort when this is the current sort.
    aria_sort: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    /// "Export CSV" of this view.
    export_url: String,
    /// The table's rows, rendered (and escaped) by [`UsersRows`].
    rows_html: Arc<str>,
    is_empty: bool,
    search: String,
    chips: Vec<StatusChip>,
    all_chip: StatusChip,
    name_header: SortHeader,
    email_header: SortHeader,
    invited_header: SortHeader,
    status_header: SortHeader,
    /// The current view's filter and order, kept by the search form.
    status_value: String,
    sort_value: &'static str,
    direction_value: &'static str,
    page_sizes: Vec<PageSize>,
    next_url: Option<String>,
    previous_url: Option<String>,
    return_to: String,
    filtered: bool,
    total_users: i64,
}

fn sort_header(
    label: &'static str,
    key: SortKey,
    query: &ListQuery,
    urls: &ViewUrl<'_>,
) -> SortHeader {
    let aria_sort = match (query.sort == key, query.direction) {
        (false, _) => "none",
        (true, Direction::Ascending) => "ascending",
        (true, Direction::Descending) => "descending",
    };
    SortHeader {
        label,
        url: urls.sorted_by(key),
        aria_sort,
    }
}

/// The rows of the Users table, rendered on their own so that a page of them can be
/// shared by the requests for the same view.
#[derive(Template)]
#[template(path = "users_rows.html")]
struct UsersRows {
    rows: Vec<UserView>,
}

/// One rendered page of the table, with what else depends only on the view.
pub struct TableView {
    rows_html: Arc<str>,
    row_count: usize,
    next: Option<Cursor>,
    previous: Option<Cursor>,
    /// Counts within a search (the unfiltered counts are cached on their own).
    searched_counts: Option<StatusCounts>,
}

/// Rendered pages of the Users table, shared by all requests for the same view (same
/// search, filter, order, position and size) for a short while: a busy console renders
/// each view about once a second instead of once per request. A change made through
/// this instance empties it at once; other instances' changes, and statuses changing
/// with time, show within the freshness window (`ENROLL_USERS_PAGE_CACHE_MS`).
pub struct ViewCache {
    fresh_for: chrono::TimeDelta,
    entries: std::sync::Mutex<HashMap<String, CachedTable>>,
}

struct CachedTable {
    generation: u64,
    rendered_at: chrono::NaiveDateTime,
    table: Arc<TableView>,
    /// Since when one request has been rendering it again; the others keep getting this
    /// one meanwhile. A time rather than a flag, so that a request that never finishes
    /// (its client went away) hands the job on instead of leaving the view stale.
    refreshing_since: Option<chrono::NaiveDateTime>,
}

/// What the cache holds for a view.
enum Lookup {
    Fresh(Arc<TableView>),
    /// Old, and another request is already rendering it again.
    Stale(Arc<TableView>),
    Missing,
}

/// Views kept at most; beyond it the oldest goes.
const CACHED_VIEWS: usize = 64;

/// After this long, a re-render in progress is presumed abandoned.
const REFRESH_TAKEOVER: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl ViewCache {
    pub fn new(fresh_for: std::time::Duration) -> Self {
        Self {
            fresh_for: chrono::TimeDelta::from_std(fresh_for).unwrap_or_default(),
            entries: std::sync::Mutex::default(),
        }
    }

    async fn render(
        query: &ListQuery,
        state: &AppState,
        now: chrono::NaiveDateTime,
    ) -> Result<TableView, AppError> {
        let db_query = query.clone();
        let searching = !query.search.trim().is_empty();
        let (page, searched_counts) = state
            .db
            .read(move |conn| {
                let page = list::page(conn, &db_query, now)?;
                let counts = if searching {
                    Some(StatusCounts::count(conn, &db_query.search, now)?)
                } else {
                    None
                };
                Ok((page, counts))
            })
            .await?;
        let rows: Vec<UserView> = page
            .rows
            .iter()
            .map(|row| UserView::new(row, now))
            .collect();
        Ok(TableView {
            row_count: rows.len(),
            rows_html: UsersRows { rows }.render()?.into(),
            next: page.next,
            previous: page.previous,
            searched_counts,
        })
    }

    /// A fresh table; or, when it is merely old, the old one while a single request
    /// (this one gets `Missing`) renders it again. A change made here always re-renders.
    fn lookup(&self, key: &str, generation: u64, now: chrono::NaiveDateTime) -> Lookup {
        if self.fresh_for <= chrono::TimeDelta::zero() {
            return Lookup::Missing;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return Lookup::Missing;
        };
        let Some(cached) = entries.get_mut(key).filter(|c| c.generation == generation) else {
            return Lookup::Missing;
        };
        if now - cached.rendered_at < self.fresh_for {
            Lookup::Fresh(cached.table.clone())
        } else if cached
            .refreshing_since
            .is_some_and(|since| now - since < REFRESH_TAKEOVER)
        {
            Lookup::Stale(cached.table.clone())
        } else {
            cached.refreshing_since = Some(now);
            Lookup::Missing
        }
    }

    fn key(query: &ListQuery) -> String {
        let from = match &query.from {
            PageFrom::Start => String::new(),
            PageFrom::After(c) => format!("after:{}", c.encode()),
            PageFrom::Before(c) => format!("before:{}", c.encode()),
        };
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            query.sort.slug(),
            query.direction.slug(),
            query.status.map_or("", EnrollmentStatus::slug),
            query.expiring_soon,
            query.per_page,
            from,
            query.search.trim().to_lowercase()
        )
    }

    async fn table(
        &self,
        query: &ListQuery,
        state: &AppState,
        now: chrono::NaiveDateTime,
    ) -> Result<Arc<TableView>, AppError> {
        let generation = state.counts.generation();
        let key = Self::key(query);
        match self.lookup(&key, generation, now) {
            Lookup::Fresh(table) | Lookup::Stale(table) => return Ok(table),
            Lookup::Missing => {}
        }
        let table = match Self::render(query, state, now).await {
            Ok(table) => Arc::new(table),
            Err(error) => {
                // Let the next request try again rather than serve the old one forever.
                if let Ok(mut entries) = self.entries.lock()
                    && let Some(cached) = entries.get_mut(&key)
                {
                    cached.refreshing_since = None;
                }
                return Err(error);
            }
        };
        if self.fresh_for > chrono::TimeDelta::zero()
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= CACHED_VIEWS
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, cached)| cached.rendered_at)
                    .map(|(key, _)| key.clone())
            {
                entries.remove(&oldest);
            }
            entries.insert(
                key,
                CachedTable {
                    generation,
                    rendered_at: now,
                    table: table.clone(),
                    refreshing_since: None,
                },
            );
        }
        Ok(table)
    }
}

pub async fn list(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let query = params.to_query();
    let now = state.clock.now();
    let table = state.views.table(&query, &state, now).await?;
    let counts = match &table.searched_counts {
        Some(counts) => counts.clone(),
        None => state.counts.get(&state.db, &state.clock).await?,
    };
    let urls = ViewUrl { query: &query };
    let total = counts.total();
    let expiring = counts.expiring_soon;
    let mut chips: Vec<StatusChip> = counts
        .by_status
        .iter()
        .map(|(status, count)| StatusChip {
            label: status.label(),
            count: *count,
            url: urls.with_status(Some(status.slug())),
            selected: query.status == Some(*status),
        })
        .collect();
    chips.push(StatusChip {
        label: "Expires within 3 days",
        count: expiring,
        url: urls.with_status(Some(EXPIRING_SOON)),
        selected: query.expiring_soon,
    });
    let shown = if query.expiring_soon {
        expiring
    } else {
        query.status.map_or(total, |status| counts.of(status))
    };
    Ok(UsersPage {
        name_header: sort_header("Name", SortKey::Name, &query, &urls),
        email_header: sort_header("Email address", SortKey::Email, &query, &urls),
        invited_header: sort_header("Invited", SortKey::Invited, &query, &urls),
        status_header: sort_header("Enrollment status", SortKey::Status, &query, &urls),
        status_value: urls.status().unwrap_or_default().to_owned(),
        sort_value: query.sort.slug(),
        direction_value: query.direction.slug(),
        page_sizes: list::PAGE_SIZES
            .into_iter()
            .map(|size| PageSize {
                size,
                selected: size == query.per_page,
            })
            .collect(),
        next_url: table.next.as_ref().map(|c| urls.page("after", c)),
        previous_url: table.previous.as_ref().map(|c| urls.page("before", c)),
        return_to: urls.current(),
        export_url: urls
            .build(urls.status(), query.sort, query.direction, None)
            .replacen("/users", "/users/export.csv", 1),
        all_chip: StatusChip {
            label: "All",
            count: total,
            url: urls.with_status(None),
            selected: query.status.is_none() && !query.expiring_soon,
        },
        chips,
        filtered: !query.search.trim().is_empty() || query.status.is_some() || query.expiring_soon,
        total_users: shown,
        search: query.search.clone(),
        rows_html: table.rows_html.clone(),
        is_empty: table.row_count == 0,
        layout: page.layout.in_section(Section::Users),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct SelectionForm {
    #[serde(default)]
    user_id: Vec<String>,
    #[serde(default)]
    return_to: String,
    #[serde(default)]
    confirm: String,
}

impl SelectionForm {
    fn selected(&self) -> Result<Vec<String>, AppError> {
        // Ids are UUIDs; anything else selects nobody.
        let mut ids: Vec<String> = self
            .user_id
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id.trim()).ok())
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() > MAX_SELECTION {
            return Err(AppError::BadRequest(format!(
                "Select at most {MAX_SELECTION} users at a time."
            )));
        }
        Ok(ids)
    }

    fn back(&self) -> &str {
        if self.return_to.starts_with("/users") {
            safe_return_path(&self.return_to)
        } else {
            "/users"
        }
    }
}

/// "Ada Lovelace, Alan Turing and 3 more"
fn name_list(users: &[UserLabel]) -> String {
    const SHOWN: usize = 5;
    let names: Vec<&str> = users.iter().take(SHOWN).map(|u| u.name.as_str()).collect();
    match users.len() {
        0 => String::new(),
        n if n <= SHOWN => names.join(", "),
        n => format!("{} and {} more", names.join(", "), n - SHOWN),
    }
}

fn users_word(n: usize) -> String {
    if n == 1 {
        "1 user".to_owned()
    } else {
        format!("{n} users")
    }
}

pub async fn resend(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SelectionForm>,
) -> Result<HttpResponse, AppError> {
    let selected = form.selected()?;
    if selected.is_empty() {
        FlashMessage::warning("Select at least one user, then choose Resend invitation.").send();
        return Ok(see_other(form.back()));
    }
    let now = state.clock.now();
    let per_hour_limit = state.config.resend_limit_per_hour;
    let actor = page.actor(&req, &state);
    let report = state
        .db
        .run(move |conn| {
            let Some(settings) = InvitationSettings::load(conn)? else {
                return Ok(None);
            };
            let change = Change { now, actor: &actor };
            Ok(Some(invitations::resend(
                conn,
                &change,
                &settings,
                &selected,
                per_hour_limit,
            )?))
        })
        .await?;
    let Some(report) = report else {
        FlashMessage::error("Set up user invitations before resending any.").send();
        return Ok(see_other("/settings/invitations"));
    };
    log_links(&state, &report.links);
    if !report.resent.is_empty() {
        state.counts.invalidate();
        state.mail.notify();
        FlashMessage::success(format!(
            "Invitation resent to {}: {}. Their earlier links no longer work.",
            users_word(report.resent.len()),
            name_list(&report.resent)
        ))
        .send();
    }
    if !report.already_enrolled.is_empty() {
        FlashMessage::warning(format!(
            "{} already enrolled, not resent: {}.",
            report.already_enrolled.len(),
            name_list(&report.already_enrolled)
        ))
        .send();
    }
    if let Some(latest) = report.rate_limited.iter().map(|(_, at)| *at).max() {
        let names: Vec<UserLabel> = report.rate_limited.iter().map(|(u, _)| u.clone()).collect();
        FlashMessage::warning(format!(
            "{} already resent {} times in the last hour, not resent: {}. Try again after {}.",
            users_word(names.len()),
            state.config.resend_limit_per_hour,
            name_list(&names),
            time_format::short(latest)
        ))
        .send();
    }
    if report.missing > 0 {
        FlashMessage::warning(format!(
            "{} no longer exist{} (removed meanwhile), nothing sent to them.",
            users_word(report.missing),
            if report.missing == 1 { "s" } else { "" }
        ))
        .send();
    }
    Ok(see_other(form.back()))
}

#[derive(Template, WebTemplate)]
#[template(path = "remove.html")]
struct RemoveConfirmation {
    layout: Layout,
    users: Vec<UserIdentity>,
    return_to: String,
}

pub async fn remove(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SelectionForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let selected = form.selected()?;
    if selected.is_empty() {
        FlashMessage::warning("Select at least one user, then choose Remove user.").send();
        return Ok(see_other(form.back()));
    }
    if form.confirm != "yes" {
        let users = state
            .db
            .run(move |conn| Ok(invitations::find_users(conn, &selected)?))
            .await?;
        if users.is_empty() {
            FlashMessage::warning("The selected users no longer exist.").send();
            return Ok(see_other(form.back()));
        }
        return Ok(RemoveConfirmation {
            layout: page.layout.in_section(Section::Users),
            users,
            return_to: form.back().to_owned(),
        }
        .respond_to(&req)
        .map_into_boxed_body());
    }
    let now = state.clock.now();
    let actor = page.actor(&req, &state);
    let removed = state
        .db
        .run(move |conn| {
            let change = Change { now, actor: &actor };
            invitations::remove(conn, &change, Removal::Selected(&selected))
        })
        .await?;
    state.counts.invalidate();
    if removed.is_empty() {
        FlashMessage::warning("The selected users no longer exist; nothing was removed.").send();
    } else {
        FlashMessage::success(format!(
            "Removed {}: {}. Their invitation links no longer work.",
            users_word(removed.len()),
            name_list(&removed)
        ))
        .send();
    }
    Ok(see_other(form.back()))
}

struct EntryView {
    when: String,
    when_machine: String,
    title: String,
    detail: String,
    css_class: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    user: UserView,
    entries: Vec<EntryView>,
}

/// One user's page: their status and the history of their invitation. Both roles see
/// it; it never shows a link or a token.
pub async fn history(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = super::path_id(&path.into_inner())?;
    let now = state.clock.now();
    let (user, entries) = state
        .db
        .run(move |conn| history::load(conn, &id, now)?.ok_or(AppError::NotFound))
        .await?;
    let entries = entries
        .into_iter()
        .map(|entry| EntryView {
            when: time_format::short(entry.at),
            when_machine: time_format::machine(entry.at),
            title: entry.title,
            detail: entry.detail,
            css_class: match entry.tone {
                Tone::Good => "timeline-entry timeline-good",
                Tone::Bad => "timeline-entry timeline-bad",
                Tone::Neutral => "timeline-entry",
            },
        })
        .collect();
    Ok(UserPage {
        layout: page.layout.in_section(Section::Users),
        user: UserView::new(&user, now),
        entries,
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

pub const DEFAULT_EXPIRED_DAYS: i64 = 30;

#[derive(Template, WebTemplate)]
#[template(path = "remove_expired.html")]
struct RemoveExpiredPage {
    layout: Layout,
    days: String,
    days_error: Option<String>,
    count: usize,
    sample: Vec<String>,
}

/// "Expired more than N days ago": whole days, 0 to ten years.
fn parse_days(input: Option<&str>) -> Result<i64, String> {
    let Some(input) = input.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_EXPIRED_DAYS);
    };
    input
        .parse::<i64>()
        .ok()
        .filter(|d| (0..=3650).contains(d))
        .ok_or_else(|| "Enter a whole number of days from 0 to 3650.".to_owned())
}

#[derive(Deserialize)]
pub struct ExpiredParams {
    days: Option<String>,
}

/// The confirmation page of "Remove expired invitations".
pub async fn remove_expired_form(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    params: web::Query<ExpiredParams>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let (days, days_error) = match parse_days(params.days.as_deref()) {
        Ok(days) => (days, None),
        Err(message) => (DEFAULT_EXPIRED_DAYS, Some(message)),
    };
    let cutoff = state.clock.now() - chrono::TimeDelta::days(days);
    let expired = state
        .db
        .run(move |conn| Ok(list::expired_before(conn, cutoff)?))
        .await?;
    Ok(RemoveExpiredPage {
        layout: page.layout.in_section(Section::Users),
        days: params.days.clone().unwrap_or_else(|| days.to_string()),
        days_error,
        count: expired.len(),
        sample: expired
            .iter()
            .take(20)
            .map(|(_, first, last, email)| format!("{first} {last} <{email}>"))
            .collect(),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}

#[derive(Deserialize)]
pub struct RemoveExpiredForm {
    #[serde(default)]
    days: String,
    #[serde(default)]
    confirm: String,
}

pub async fn remove_expired(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<RemoveExpiredForm>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let Ok(days) = parse_days(Some(&form.days)) else {
        return Ok(see_other(&format!(
            "/users/remove-expired?days={}",
            url::form_urlencoded::byte_serialize(form.days.as_bytes()).collect::<String>()
        )));
    };
    if form.confirm != "yes" {
        return Ok(see_other(&format!("/users/remove-expired?days={days}")));
    }
    let now = state.clock.now();
    let actor = page.actor(&req, &state);
    let removed = state
        .db
        .run(move |conn| {
            let change = Change { now, actor: &actor };
            let cutoff = now - chrono::TimeDelta::days(days);
            invitations::remove(conn, &change, Removal::ExpiredBefore(cutoff))
        })
        .await?;
    state.counts.invalidate();
    FlashMessage::success(format!(
        "Removed {} whose invitation expired more than {days} day{} ago without joining.",
        users_word(removed.len()),
        if days == 1 { "" } else { "s" }
    ))
    .send();
    Ok(see_other("/users"))
}

/// Rows fetched per query while exporting.
const EXPORT_BATCH: i64 = 1000;

/// "Export CSV" (administrators): every user of the current view (search, filter and
/// order; not just the page shown), streamed as it is read, so that 100,000 users never
/// sit in memory at once.
pub async fn export(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    page.require_administrator()?;
    let mut query = params.to_query();
    query.from = PageFrom::Start;
    query.per_page = EXPORT_BATCH;
    let now = state.clock.now();
    let view = ViewUrl { query: &query }.build(
        ViewUrl { query: &query }.status(),
        query.sort,
        query.direction,
        None,
    );
    let actor = page.actor(&req, &state);
    state
        .db
        .run(move |conn| {
            crate::audit::record(
                conn,
                &[crate::audit::NewAuditEvent::new(
                    now,
                    &actor,
                    crate::audit::Action::Export,
                    None,
                    view,
                )],
            )?;
            Ok(())
        })
        .await?;
    let body = export_stream(state.db.clone(), query, now);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"enroll-users-{}.csv\"",
                now.format("%Y-%m-%d")
            ),
        ))
        .streaming(body))
}

/// Where an export stands between two pieces of the response.
enum ExportStep {
    Header(ListQuery),
    Rows(ListQuery),
    Done,
}

/// The view as CSV, one batch per piece. The next batch is read only when the client
/// has taken the previous one, and each read borrows a database connection just for
/// itself: a download that stalls holds a socket, not a connection or a thread.
fn export_stream(
    db: crate::db::Db,
    query: ListQuery,
    now: chrono::NaiveDateTime,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::unfold(ExportStep::Header(query), move |step| {
        let db = db.clone();
        async move {
            match step {
                ExportStep::Header(query) => {
                    // A byte-order mark, so that spreadsheets read the file as UTF-8.
                    let header = "\u{feff}First name,Last name,Email address,Status,\
                                  Invited (UTC),Expires (UTC)\r\n";
                    Some((Ok(web::Bytes::from(header)), ExportStep::Rows(query)))
                }
                ExportStep::Rows(mut query) => {
                    let batch_query = query.clone();
                    let batch = db
                        .run(move |conn| {
                            let page = list::page(conn, &batch_query, now)?;
                            Ok((csv_rows(&page.rows, now)?, page.next))
                        })
                        .await;
                    match batch {
                        Ok((bytes, Some(cursor))) => {
                            query.from = PageFrom::After(cursor);
                            Some((Ok(bytes.into()), ExportStep::Rows(query)))
                        }
                        Ok((bytes, None)) => Some((Ok(bytes.into()), ExportStep::Done)),
                        Err(error) => {
                            tracing::error!(%error, "CSV export failed");
                            Some((
                                Err(std::io::Error::other(error.to_string())),
                                ExportStep::Done,
                            ))
                        }
                    }
                }
                ExportStep::Done => None,
            }
        }
    })
}

fn csv_rows(rows: &[list::UserRow], now: chrono::NaiveDateTime) -> Result<Vec<u8>, AppError> {
    use crate::users::csv::safe_cell;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        let status = row.status(now);
        let expires = if status == EnrollmentStatus::Enrolled {
            String::new()
        } else {
            time_format::short(row.expires_at)
        };
        let record = [
            safe_cell(&row.first_name),
            safe_cell(&row.last_name),
            safe_cell(&row.email),
            status.label().into(),
            time_format::short(row.created_at).into(),
            expires.into(),
        ];
        writer
            .write_record(record.iter().map(|cell| cell.as_ref()))
            .map_err(anyhow::Error::from)?;
    }
    writer
        .into_inner()
        .map_err(|error| AppError::Unexpected(anyhow::anyhow!("{error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_holding(key: &str, rendered_at: chrono::NaiveDateTime) -> ViewCache {
        let cache = ViewCache::new(std::time::Duration::from_secs(1));
        let table = Arc::new(TableView {
            rows_html: Arc::from(""),
            row_count: 0,
            next: None,
            previous: None,
            searched_counts: None,
        });
        cache.entries.lock().unwrap().insert(
            key.to_owned(),
            CachedTable {
                generation: 0,
                rendered_at,
                table,
                refreshing_since: None,
            },
        );
        cache
    }

    #[test]
    fn one_request_re_renders_a_stale_view_and_an_abandoned_one_is_taken_over() {
        let start = chrono::NaiveDateTime::default();
        let cache = cache_holding("view", start);
        assert!(matches!(cache.lookup("view", 0, start), Lookup::Fresh(_)));
        let later = start + chrono::TimeDelta::seconds(2);
        assert!(matches!(cache.lookup("view", 0, later), Lookup::Missing));
        assert!(matches!(cache.lookup("view", 0, later), Lookup::Stale(_)));
        // The renderer never came back (its client went away): someone else takes over.
        let much_later = later + REFRESH_TAKEOVER;
        assert!(matches!(
            cache.lookup("view", 0, much_later),
            Lookup::Missing
        ));
        assert!(matches!(
            cache.lookup("view", 0, much_later),
            Lookup::Stale(_)
        ));
        // A change made here (a new generation) is never served from the cache.
        assert!(matches!(cache.lookup("view", 1, start), Lookup::Missing));
    }
}
