//! Substring search over users, in each engine's own SQL.

use diesel::expression::BoxableExpression;
use diesel::sql_types::{BigInt, Bool, Text};

use super::{Engine, MultiBackend};

/// Users whose `search_key` contains `term` (at least three characters, lower-cased),
/// answered from a trigram index first: the matches are found once, by the index, and
/// only then joined, filtered and sorted. Plans therefore start from the selective side
/// whatever the statistics say (`tests/api/plans.rs` checks it on an unanalysed
/// database). `at_most` stops after that many matches (a bounded count).
///
/// On SQLite that is an FTS5 trigram phrase query: a phrase of trigrams is exactly a
/// substring, and unlike LIKE on the same table it needs no look-up of each candidate's
/// text. On PostgreSQL it is pg_trgm behind LIKE, in `= ANY(ARRAY(subquery))`: an
/// uncorrelated subquery run once (an InitPlan) whose ids are then looked up by primary
/// key. The earlier `IN (subquery OFFSET 0)` let an unanalysed planner run the trigram
/// scan again for every live invitation (a nested loop: minutes at 100,000 users), and
/// a plain `LIKE` beside `ORDER BY name` lets it walk the whole name index instead.
pub fn users_containing<QS>(
    engine: Engine,
    term: &str,
    like_pattern: String,
    at_most: Option<i64>,
) -> Box<dyn BoxableExpression<QS, MultiBackend, SqlType = Bool>> {
    // i64::MAX is no limit at all, and keeps one statement text (one prepared statement).
    let limit = at_most.unwrap_or(i64::MAX);
    match engine {
        Engine::Sqlite => Box::new(
            diesel::dsl::sql::<Bool>(
                "users.search_id IN (SELECT rowid FROM users_search WHERE users_search MATCH ",
            )
            // Inside an FTS5 string only the double quote is special, written twice.
            .bind::<Text, _>(format!("\"{}\"", term.replace('"', "\"\"")))
            .sql(" LIMIT ")
            .bind::<BigInt, _>(limit)
            .sql(")"),
        ),
        Engine::Postgres => Box::new(
            diesel::dsl::sql::<Bool>(
                "users.id = ANY(ARRAY(SELECT matching.id FROM users AS matching \
                 WHERE matching.search_key LIKE ",
            )
            .bind::<Text, _>(like_pattern)
            .sql(" ESCAPE '\\' LIMIT ")
            .bind::<BigInt, _>(limit)
            .sql("))"),
        ),
    }
}
