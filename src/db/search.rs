//! Substring search over users, in each engine's own SQL.

use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use super::{DbConnection, Engine, MultiBackend, engine_of};

/// The text of an FTS5 query for `term` as one phrase: a phrase of trigrams is exactly a
/// substring. Inside an FTS5 string only the double quote is special, written twice.
fn fts_phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// How many users' `search_key` contains `term`, counted no further than `at_most`,
/// from the trigram index alone (PostgreSQL rechecks each candidate's row).
pub fn count_containing(
    conn: &mut DbConnection,
    term: &str,
    like_pattern: String,
    at_most: i64,
) -> QueryResult<i64> {
    let count = match engine_of(conn) {
        Engine::Sqlite => diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM (SELECT rowid FROM users_search WHERE users_search MATCH ",
        )
        .bind::<Text, _>(fts_phrase(term))
        .sql(" LIMIT ")
        .bind::<BigInt, _>(at_most)
        .sql("))"),
        Engine::Postgres => diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM (SELECT 1 FROM users WHERE users.search_key LIKE ",
        )
        .bind::<Text, _>(like_pattern)
        .sql(" ESCAPE '\\' LIMIT ")
        .bind::<BigInt, _>(at_most)
        .sql(") AS matching)"),
    };
    diesel::select(count).get_result(conn)
}

/// Users whose `search_key` contains `term` (at least three characters, lower-cased),
/// answered from a trigram index first: the matches are found once, by the index, and
/// only then joined, filtered and sorted. Plans therefore start from the selective side
/// whatever the statistics say (`tests/api/plans.rs` checks it on an unanalysed
/// database).
///
/// On SQLite that is an FTS5 trigram phrase query: a phrase of trigrams is exactly a
/// substring, and unlike LIKE on the same table it needs no look-up of each candidate's
/// text. On PostgreSQL it is pg_trgm behind LIKE, in `ctid = ANY(ARRAY(subquery))`: an
/// uncorrelated subquery run once (an InitPlan) whose rows are then fetched by their
/// address (a TID scan, within the same snapshot) rather than looked up again by
/// primary key. The earlier `IN (subquery OFFSET 0)` let an unanalysed planner run the
/// trigram scan again for every live invitation (a nested loop: minutes at 100,000
/// users), and a plain `LIKE` beside `ORDER BY name` lets it walk the whole name index
/// instead.
pub fn users_containing<QS>(
    engine: Engine,
    term: &str,
    like_pattern: String,
) -> Box<dyn BoxableExpression<QS, MultiBackend, SqlType = Bool>> {
    match engine {
        Engine::Sqlite => Box::new(
            diesel::dsl::sql::<Bool>(
                "users.search_id IN (SELECT rowid FROM users_search WHERE users_search MATCH ",
            )
            .bind::<Text, _>(fts_phrase(term))
            .sql(")"),
        ),
        Engine::Postgres => Box::new(
            diesel::dsl::sql::<Bool>(
                "users.ctid = ANY(ARRAY(SELECT matching.ctid FROM users AS matching \
                 WHERE matching.search_key LIKE ",
            )
            .bind::<Text, _>(like_pattern)
            .sql(" ESCAPE '\\'))"),
        ),
    }
}
