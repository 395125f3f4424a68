//! The Users page's queries keep sane plans on a database whose statistics were never
//! gathered: 100,000 users seeded with SQL (seconds, not minutes), no ANALYZE, and every
//! query of every view explained. A plan fails when it loops over a sequential scan: a
//! scan of a whole table once per row of another (PostgreSQL's "Nested Loop" over a
//! "Seq Scan", or a correlated SubPlan scanning; SQLite's SCAN below the outer loop).
//! That is the shape that held every pooled connection for minutes in issue 15.

use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use enroll::db::{DatabaseUrl, Db, DbConnection};
use enroll::users::EnrollmentStatus;
use enroll::users::list::{self, Direction, ListQuery, PageFrom, SortKey};

use crate::support::*;

const SEED_SQLITE: &str = include_str!("plans/seed_sqlite.sql");
const SEED_POSTGRES: &str = include_str!("plans/seed_postgres.sql");

/// The statements a piece of work ran, as diesel shows them ("SQL -- binds: [...]").
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Instrumentation for Captured {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            self.0.lock().unwrap().push(query.to_string());
        }
    }
}

on_both_engines! {
    async fn users_page_queries_never_loop_over_a_scan_on_an_unanalysed_database() {
        let engine = current_engine();
        let data = TestData::new(engine);
        let url = match &data.database {
            Some(database) => database.url.clone(),
            None => data.path().join("plans.db").to_string_lossy().into_owned(),
        };
        let db = Db::connect(&DatabaseUrl::parse(&url).unwrap(), 2).unwrap();
        tokio::task::spawn_blocking(move || check_every_view(&db, engine))
            .await
            .unwrap();
    }
}

on_both_engines! {
    async fn a_large_invite_refreshes_the_statistics_of_the_tables_it_grew() {
        let app = spawn_app().await;
        app.set_up_invitations().await;
        let people: Vec<(String, String, String)> = (0..600)
            .map(|n| ("Bulk".into(), format!("Person{n}"), format!("bulk{n}@example.com")))
            .collect();
        let page = app.invite(&people).await;
        assert_eq!(page.status, 303, "the invite failed: {}", page.text());
        assert_eq!(app.count("users"), 600);
        // Refreshed in the background: wait for it.
        let grown = ["users", "invitations", "outbound_emails"];
        let mut analysed = Vec::new();
        for _ in 0..100 {
            analysed = tables_with_statistics(&mut app.conn(), current_engine());
            if grown.iter().all(|table| analysed.iter().any(|t| t == table)) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("statistics of {grown:?} expected after a 600-row invite; only {analysed:?} have them");
    }
}

/// The tables the planner has statistics for, gathered by an ANALYZE (not autovacuum).
fn tables_with_statistics(conn: &mut DbConnection, engine: Engine) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let query = match engine {
        Engine::Sqlite => {
            // An error until the first ANALYZE makes the table: none then.
            "SELECT DISTINCT tbl AS name FROM sqlite_stat1"
        }
        Engine::Postgres => {
            "SELECT relname::text AS name FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
        }
    };
    diesel::sql_query(query)
        .load::<Table>(conn)
        .map(|tables| tables.into_iter().map(|t| t.name).collect())
        .unwrap_or_default()
}

fn check_every_view(db: &Db, engine: Engine) {
    let mut conn = db.get().unwrap();
    enroll::db::run_migrations(&mut conn).unwrap();
    seed(&mut conn, engine);
    let now = chrono::Utc::now().naive_utc();
    let captured = Captured::default();
    conn.set_instrumentation(captured.clone());

    let mut views = Vec::new();
    for search in ["", "velac", "123", "grace hopper"] {
        for status in [
            None,
            Some(EnrollmentStatus::Pending),
            Some(EnrollmentStatus::Expired),
            Some(EnrollmentStatus::DeliveryFailed),
            Some(EnrollmentStatus::Sending),
            Some(EnrollmentStatus::Enrolled),
        ] {
            for sort in SortKey::ALL {
                views.push(ListQuery {
                    search: search.to_owned(),
                    status,
                    sort,
                    ..ListQuery::default()
                });
            }
        }
        views.push(ListQuery {
            search: search.to_owned(),
            expiring_soon: true,
            ..ListQuery::default()
        });
        views.push(ListQuery {
            search: search.to_owned(),
            direction: Direction::Descending,
            ..ListQuery::default()
        });
    }
    // A cursor halfway down the first page of each order, for the next pages.
    let cursors: Vec<(SortKey, list::Cursor)> = SortKey::ALL
        .into_iter()
        .filter_map(|sort| {
            let view = ListQuery {
                sort,
                ..ListQuery::default()
            };
            let page = list::page(&mut conn, &view, now).unwrap();
            page.next.map(|cursor| (sort, cursor))
        })
        .collect();
    captured.0.lock().unwrap().clear();
    let mut explained = 0;
    for view in views {
        let cursor = cursors.iter().find(|(sort, _)| *sort == view.sort);
        let next = cursor.map(|(_, cursor)| ListQuery {
            from: PageFrom::After(cursor.clone()),
            ..view.clone()
        });
        let counted = view.status.is_none() && view.sort == SortKey::Name && !view.expiring_soon;
        for query in std::iter::once(&view).chain(next.as_ref()) {
            // What runs is captured as it starts; only its plan matters here, and an
            // unanalysed plan may be slow to run (that is why there are deadlines). On
            // PostgreSQL each statement is stopped after a millisecond.
            run_briefly(&mut conn, engine, |conn| {
                list::page(conn, query, now).map(drop)
            });
            explained += check(&mut conn, engine, &captured, &format!("{query:?}"));
        }
        if counted {
            // Both ways a search is counted: how many match (from the trigram index), and
            // by status.
            run_briefly(&mut conn, engine, |conn| {
                list::search_matches(conn, &view.search, 1001).map(drop)
            });
            run_briefly(&mut conn, engine, |conn| {
                list::status_counts(conn, &view.search, now).map(drop)
            });
            explained += check(&mut conn, engine, &captured, &format!("counts {view:?}"));
        }
    }
    run_briefly(&mut conn, engine, |conn| {
        list::expired_before(conn, now).map(drop)
    });
    explained += check(&mut conn, engine, &captured, "remove expired");
    assert!(explained > 100, "only {explained} statements explained");
}

/// Runs `work` for the statements it starts, with PostgreSQL's statement timeout at a
/// millisecond (SQLite's plans run fast enough to finish).
fn run_briefly(
    conn: &mut DbConnection,
    engine: Engine,
    work: impl FnOnce(&mut DbConnection) -> QueryResult<()>,
) {
    if engine == Engine::Sqlite {
        work(conn).unwrap();
        return;
    }
    conn.batch_execute("SET statement_timeout = 1").unwrap();
    let _ = work(conn);
    // The reset runs under the millisecond too, and on a busy machine (the whole suite in
    // parallel) its backend can wait longer than that for a core: then it is stopped as
    // well, harmlessly, and tried again.
    let reset = (0..100).find_map(|_| conn.batch_execute("SET statement_timeout = 0").ok());
    assert!(reset.is_some(), "statement_timeout could not be reset");
}

/// Seeds 100,000 users and invitations with SQL alone, and makes sure no statistics
/// exist (PostgreSQL's autovacuum is kept off these tables for the test).
fn seed(conn: &mut DbConnection, engine: Engine) {
    match engine {
        Engine::Sqlite => {
            conn.batch_execute(SEED_SQLITE).unwrap();
            let stats: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1')",
            ))
            .get_result(conn)
            .unwrap();
            assert_eq!(
                stats, 0,
                "SQLite has statistics: the test would prove nothing"
            );
        }
        Engine::Postgres => {
            conn.batch_execute(
                "ALTER TABLE users SET (autovacuum_enabled = false); \
                 ALTER TABLE invitations SET (autovacuum_enabled = false);",
            )
            .unwrap();
            conn.batch_execute(SEED_POSTGRES).unwrap();
            let analysed: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM pg_stats WHERE tablename IN ('users', 'invitations'))",
            ))
            .get_result(conn)
            .unwrap();
            assert_eq!(
                analysed, 0,
                "PostgreSQL has statistics: the test would prove nothing"
            );
        }
    }
    let users: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM users)",
    ))
    .get_result(conn)
    .unwrap();
    assert_eq!(users, 100_000);
}

/// Explains every statement captured since the last call; returns how many.
fn check(conn: &mut DbConnection, engine: Engine, captured: &Captured, view: &str) -> usize {
    let statements: Vec<String> = std::mem::take(&mut *captured.0.lock().unwrap());
    let mut explained = 0;
    for statement in statements {
        let (sql, binds) = statement
            .split_once(" -- binds: ")
            .unwrap_or((statement.as_str(), "[]"));
        if !sql.trim_start().to_uppercase().starts_with("SELECT") {
            continue;
        }
        let problem = match engine {
            Engine::Sqlite => sqlite_loop_over_scan(conn, sql),
            Engine::Postgres => postgres_loop_over_scan(conn, sql, binds),
        };
        // Explaining ran statements too: they are not checked themselves.
        captured.0.lock().unwrap().clear();
        if let Some(problem) = problem {
            panic!("{view}: {problem}\nSQL: {sql}\nbinds: {binds}");
        }
        explained += 1;
    }
    explained
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    parent: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// SQLite runs a join as nested loops, in the order EXPLAIN QUERY PLAN lists them under
/// one parent: a full SCAN after the first loop is a scan per outer row, and so is one
/// inside a correlated subquery. (The FTS5 match, "VIRTUAL TABLE INDEX n:M", is an index
/// look-up.) Unbound parameters are NULL, which does not change SQLite's plan.
fn sqlite_loop_over_scan(conn: &mut DbConnection, sql: &str) -> Option<String> {
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load(conn)
        .unwrap();
    let text: Vec<String> = lines.iter().map(|l| l.detail.clone()).collect();
    let is_loop = |d: &str| d.starts_with("SCAN ") || d.starts_with("SEARCH ");
    let is_full_scan = |d: &str| d.starts_with("SCAN ") && !d.contains("VIRTUAL TABLE INDEX");
    let correlated = |mut id: i32| {
        while let Some(line) = lines.iter().find(|l| l.id == id) {
            if line.detail.contains("CORRELATED") {
                return true;
            }
            id = line.parent;
        }
        false
    };
    for line in &lines {
        if !is_full_scan(&line.detail) {
            continue;
        }
        let earlier_loop = lines
            .iter()
            .any(|l| l.parent == line.parent && l.id < line.id && is_loop(&l.detail));
        if earlier_loop || correlated(line.parent) {
            return Some(format!(
                "a loop over a full scan: {}\n{}",
                line.detail,
                text.join("\n")
            ));
        }
    }
    None
}

/// PostgreSQL: the statement is explained with its values written in, which is what
/// the planner sees when it plans a statement for its parameters (a custom plan).
fn postgres_loop_over_scan(conn: &mut DbConnection, sql: &str, binds: &str) -> Option<String> {
    let values: Vec<String> = parse_binds(binds).into_iter().map(sql_literal).collect();
    let mut sql = sql.to_owned();
    // From the highest number down, so that $1 does not eat the start of $10.
    for (n, value) in values.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", n + 1), value);
    }
    let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    let plan: Vec<Plan> = diesel::sql_query(explain).load(conn).unwrap();
    let json: serde_json::Value = serde_json::from_str(&plan[0].plan).unwrap();
    let root = &json[0]["Plan"];
    find_loop_over_scan(root).map(|node| {
        format!(
            "a loop over a sequential scan ({node})\n{}",
            serde_json::to_string_pretty(root).unwrap()
        )
    })
}

fn contains_seq_scan(node: &serde_json::Value) -> Option<String> {
    if node["Node Type"] == "Seq Scan" {
        return Some(format!("Seq Scan on {}", node["Relation Name"]));
    }
    node["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(contains_seq_scan)
}

/// The inner side of a Nested Loop runs once per outer row, and so does a SubPlan.
fn find_loop_over_scan(node: &serde_json::Value) -> Option<String> {
    let children: Vec<&serde_json::Value> =
        node["Plans"].as_array().into_iter().flatten().collect();
    if node["Node Type"] == "Nested Loop"
        && let Some(inner) = children.get(1)
        && let Some(scan) = contains_seq_scan(inner)
    {
        return Some(format!("Nested Loop over {scan}"));
    }
    for child in &children {
        if child["Parent Relationship"] == "SubPlan"
            && let Some(scan) = contains_seq_scan(child)
        {
            return Some(format!("SubPlan (once per row) over {scan}"));
        }
    }
    children.into_iter().find_map(find_loop_over_scan)
}

/// diesel's debug list of bound values: `["text", 5, 2026-11-30T10:00:00.123]`.
fn parse_binds(binds: &str) -> Vec<String> {
    let inner = binds.trim().trim_start_matches('[').trim_end_matches(']');
    let mut values = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&',') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut value = String::new();
        if first == '"' {
            // A Rust string literal: keep it quoted, with its escapes.
            value.push(chars.next().unwrap());
            while let Some(c) = chars.next() {
                value.push(c);
                if c == '\\' {
                    value.push(chars.next().unwrap());
                } else if c == '"' {
                    break;
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        values.push(value.trim().to_owned());
    }
    values
}

fn sql_literal(value: String) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    if let Some(text) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let unescaped = text.replace("\\\"", "\"").replace("\\\\", "\\");
        return quote(&unescaped);
    }
    if let Some(inner) = value
        .strip_prefix("Some(")
        .and_then(|v| v.strip_suffix(')'))
    {
        return sql_literal(inner.to_owned());
    }
    match value.as_str() {
        "None" => "NULL".to_owned(),
        "true" | "false" => value,
        v if v.parse::<f64>().is_ok() => value,
        // Timestamps and anything else: a quoted literal, typed by the prepared statement.
        v => quote(v),
    }
}

#[test]
fn bound_values_are_read_back() {
    assert_eq!(
        parse_binds(r#"["\"velac\"", 9223372036854775807, 2026-11-30T10:00:00.123, "it's"]"#),
        vec![
            r#""\"velac\"""#,
            "9223372036854775807",
            "2026-11-30T10:00:00.123",
            r#""it's""#
        ]
    );
    assert_eq!(sql_literal(r#""it's""#.to_owned()), "'it''s'");
    assert_eq!(
        sql_literal("2026-11-30T10:00:00".to_owned()),
        "'2026-11-30T10:00:00'"
    );
}
