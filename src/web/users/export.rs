//! "Export CSV" of the current view.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ListParams, ViewUrl};
use crate::operations::Operations;
use crate::principal::Principal;
use crate::time_format;
use crate::users::EnrollmentStatus;
use crate::users::list::{self, ListQuery, PageFrom};
use crate::web::error::AppError;
use crate::web::layout::ConsolePage;
use crate::web::request::AppState;

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
    let principal = page.principal(&req, &state);
    state.ops.record_export(&principal, view).await?;
    let body = export_stream(state.ops.clone(), principal, query, now);
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
    ops: Operations,
    principal: Principal,
    query: ListQuery,
    now: chrono::NaiveDateTime,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::unfold(ExportStep::Header(query), move |step| {
        let (ops, principal) = (ops.clone(), principal.clone());
        async move {
            match step {
                ExportStep::Header(query) => {
                    // A byte-order mark, so that spreadsheets read the file as UTF-8;
                    // every field quoted, as in the rows.
                    let header = "\u{feff}\"First name\",\"Last name\",\"Email address\",\
                                  \"Status\",\"Invited (UTC)\",\"Expires (UTC)\"\r\n";
                    Some((Ok(web::Bytes::from(header)), ExportStep::Rows(query)))
                }
                ExportStep::Rows(mut query) => {
                    let batch = match ops.export_batch(&principal, query.clone(), now).await {
                        Ok(page) => csv_rows(&page.rows, now).map(|bytes| (bytes, page.next)),
                        Err(error) => Err(error.into()),
                    };
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
    // Every field quoted: a `;` in a name is then inside a field even for a spreadsheet
    // that splits on `;`, and `safe_cell` covers those that ignore quotes.
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    for row in rows {
        let status = row.status(now);
        let expires = if matches!(
            status,
            EnrollmentStatus::Enrolled | EnrollmentStatus::NotInvited
        ) {
            String::new()
        } else {
            time_format::short(row.expires_at)
        };
        let invited = time_format::short(row.created_at);
        let record = [
            row.first_name.as_str(),
            &row.last_name,
            &row.email,
            status.label(),
            &invited,
            &expires,
        ];
        writer
            .write_record(record.map(|cell| safe_cell(cell).into_owned()))
            .map_err(anyhow::Error::from)?;
    }
    writer
        .into_inner()
        .map_err(|error| AppError::Unexpected(anyhow::anyhow!("{error}")))
}
