//! The Users page ("Resources › Users"): search, filter, sort and page through users.
//! The actions on selected rows, a user's history and the CSV export have their own
//! modules.

mod actions;
mod export;
mod history;
mod view_cache;

pub use actions::{remove, remove_expired, remove_expired_form, resend};
pub use export::export;
pub use history::history;
pub use view_cache::ViewCache;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::error::AppError;
use super::layout::{ConsolePage, Layout, Section};
use super::request::AppState;
use crate::time_format;
use crate::users::EnrollmentStatus;
use crate::users::counts::COUNT_CAP;
use crate::users::list::{self, Cursor, Direction, ListQuery, PageFrom, SortKey};

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
    /// The search box as typed, as the database could take it.
    fn typed_search(&self) -> String {
        super::request::plain_text(
            self.q.as_deref().unwrap_or_default(),
            list::MAX_SEARCH_LENGTH,
        )
    }

    /// A term typed but too short to be searched for.
    fn too_short_search(&self) -> bool {
        let typed = self.typed_search();
        !typed.trim().is_empty() && !list::is_searchable(&typed)
    }

    /// Unknown or malformed values fall back to defaults: a stale bookmark still opens.
    pub(super) fn to_query(&self) -> ListQuery {
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
        let search = self.typed_search();
        ListQuery {
            // A term too short to search is dropped here, so that it is neither run nor
            // given a cached view of its own; the page says why.
            search: if list::is_searchable(&search) {
                search
            } else {
                String::new()
            },
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

pub(super) struct UserView {
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
    /// Never invited: selecting only such users turns the button into "Send invitation".
    not_invited: bool,
    provisioned_by: Option<String>,
}

impl UserView {
    pub(super) fn new(row: &list::UserRow, now: chrono::NaiveDateTime) -> Self {
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
            show_expiry: !matches!(
                status,
                EnrollmentStatus::Enrolled
                    | EnrollmentStatus::NotInvited
                    | EnrollmentStatus::Deactivated
            ),
            not_invited: status == EnrollmentStatus::NotInvited,
            provisioned_by: row.provisioned_by.clone(),
            delivery_error: (status == EnrollmentStatus::DeliveryFailed)
                .then(|| row.delivery_error.clone())
                .flatten(),
        }
    }
}

struct StatusChip {
    label: &'static str,
    /// None when not counted (a search too broad to count by status).
    count: Option<String>,
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
    /// A term was typed that is too short to search for (everyone is listed instead).
    search_too_short: bool,
    min_search_chars: usize,
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
    /// "3 users match.", "More than 1,000 users match."
    total_text: String,
    /// The search matched too many users to count them by status.
    counts_capped: bool,
    count_cap: String,
    /// "Send invitation" when the view lists only users never invited (the script
    /// switches it as the selection changes).
    resend_label: &'static str,
}

/// 1000 as "1,000".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
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

pub async fn list(
    req: HttpRequest,
    page: ConsolePage,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let query = params.to_query();
    let now = state.clock.now();
    let principal = page.principal(&req, &state);
    let table = state.views.table(&query, &state, &principal, now).await?;
    let counts = match &table.searched_counts {
        Some(counts) => counts.clone(),
        None => state.ops.status_counts(&principal).await?,
    };
    let urls = ViewUrl { query: &query };
    let total = counts.total();
    let expiring = counts.expiring_soon;
    // A broad search is counted up to a point: its total says "more than", and its
    // statuses are not counted at all rather than counted in part.
    let exact = |count: i64| (!counts.capped).then(|| count.to_string());
    let mut chips: Vec<StatusChip> = counts
        .by_status
        .iter()
        .map(|(status, count)| StatusChip {
            label: status.label(),
            count: exact(*count),
            url: urls.with_status(Some(status.slug())),
            selected: query.status == Some(*status),
        })
        .collect();
    chips.push(StatusChip {
        label: "Expires within 3 days",
        count: exact(expiring),
        url: urls.with_status(Some(EXPIRING_SOON)),
        selected: query.expiring_soon,
    });
    let filtered = !query.search.trim().is_empty() || query.status.is_some() || query.expiring_soon;
    let shown = if query.expiring_soon {
        expiring
    } else {
        query.status.map_or(total, |status| counts.of(status))
    };
    let total_text = match (counts.capped, filtered) {
        (true, _) => format!("More than {} users match.", thousands(COUNT_CAP)),
        (false, true) if shown == 1 => "1 user matches.".to_owned(),
        (false, true) => format!("{shown} users match."),
        (false, false) if shown == 1 => "1 user.".to_owned(),
        (false, false) => format!("{shown} users."),
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
            count: Some(if counts.capped {
                format!("{}+", thousands(COUNT_CAP))
            } else {
                total.to_string()
            }),
            url: urls.with_status(None),
            selected: query.status.is_none() && !query.expiring_soon,
        },
        chips,
        filtered,
        total_text,
        counts_capped: counts.capped,
        count_cap: thousands(COUNT_CAP),
        resend_label: if query.status == Some(EnrollmentStatus::NotInvited) {
            "Send invitation"
        } else {
            "Resend invitation"
        },
        search: params.typed_search(),
        search_too_short: params.too_short_search(),
        min_search_chars: list::MIN_SEARCH_CHARS,
        rows_html: table.rows_html.clone(),
        is_empty: table.row_count == 0,
        layout: page.layout.in_section(Section::Users),
    }
    .respond_to(&req)
    .map_into_boxed_body())
}
