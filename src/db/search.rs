//! Substring search over users, in each engine's own SQL.

use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use super::{DbConnection, Engine, MultiBackend, engine_of};

/// What SQLite's trigram index (FTS5) is asked for a term.
enum TrigramQuery {
    /// The term as one phrase of trigrams, which is exactly a substring.
    Exact(String),
    /// A few of the term's trigrams, without their positions: the candidates' text is
    /// then checked with LIKE. FTS5 checks a phrase's positions in the list of every one
    /// of its trigrams, and for a long term ("grace hopper": ten trigrams, some in
    /// thousands of users) that cost more than the rest of the search.
    Candidates(String),
}

/// Terms of up to this many trigrams are asked for as a phrase.
const EXACT_TRIGRAMS: usize = 3;

/// Inside an FTS5 string only the double quote is special, written twice.
fn fts_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

impl TrigramQuery {
    fn of(term: &str) -> Self {
        let chars: Vec<char> = term.chars().collect();
        if chars.len() < 3 + EXACT_TRIGRAMS {
            return Self::Exact(fts_string(term));
        }
        let trigram =
            |start: usize| fts_string(&chars[start..start + 3].iter().collect::<String>());
        let last = chars.len() - 3;
        Self::Candidates(format!(
            "{} AND {} AND {}",
            trigram(0),
            trigram(last / 2),
            trigram(last)
        ))
    }
}

/// How many users' `search_key` contains `term`, counted no further than `at_most`,
/// from the trigram index (each candidate's row is read only when the index alone
/// cannot tell: a long term on SQLite, and on PostgreSQL, which rechecks every row).
pub fn count_containing(
    conn: &mut DbConnection,
    term: &str,
    like_pattern: String,
    at_most: i64,
) -> QueryResult<i64> {
    match (engine_of(conn), TrigramQuery::of(term)) {
        (Engine::Sqlite, TrigramQuery::Exact(phrase)) => diesel::select(
            diesel::dsl::sql::<BigInt>(
                "(SELECT count(*) FROM (SELECT rowid FROM users_search \
                 WHERE users_search MATCH ",
            )
            .bind::<Text, _>(phrase)
            .sql(" LIMIT ")
            .bind::<BigInt, _>(at_most)
            .sql("))"),
        )
        .get_result(conn),
        (Engine::Sqlite, TrigramQuery::Candidates(trigrams)) => diesel::select(
            diesel::dsl::sql::<BigInt>(
                "(SELECT count(*) FROM (SELECT 1 FROM users WHERE users.search_id IN \
                 (SELECT rowid FROM users_search WHERE users_search MATCH ",
            )
            .bind::<Text, _>(trigrams)
            .sql(") AND users.search_key LIKE ")
            .bind::<Text, _>(like_pattern)
            .sql(" ESCAPE '\\' LIMIT ")
            .bind::<BigInt, _>(at_most)
            .sql("))"),
        )
        .get_result(conn),
        (Engine::Postgres, _) => diesel::select(
            diesel::dsl::sql::<BigInt>(
                "(SELECT count(*) FROM (SELECT 1 FROM users WHERE users.search_key LIKE ",
            )
            .bind::<Text, _>(like_pattern)
            .sql(" ESCAPE '\\' LIMIT ")
            .bind::<BigInt, _>(at_most)
            .sql(") AS matching)"),
        )
        .get_result(conn),
    }
}

/// Users whose `search_key` contains `term` (at least three characters, lower-cased),
/// answered from a trigram index first: the matches are found once, by the index, and
/// only then joined, filtered and sorted. Plans therefore start from the selective side
/// whatever the statistics say (`tests/api/plans.rs` checks it on an unanalysed
/// database).
///
/// On SQLite that is an FTS5 trigram phrase query: a phrase of trigrams is exactly a
/// substring, and unlike LIKE on the same table it needs no look-up of each candidate's
/// text (a long term asks for three of its trigrams instead, see [`TrigramQuery`]). On PostgreSQL it is pg_trgm behind LIKE, in `ctid = ANY(ARRAY(subquery))`: an
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
    match (engine, TrigramQuery::of(term)) {
        (Engine::Sqlite, TrigramQuery::Exact(phrase)) => Box::new(
            diesel::dsl::sql::<Bool>(
                "users.search_id IN (SELECT rowid FROM users_search WHERE users_search MATCH ",
            )
            .bind::<Text, _>(phrase)
            .sql(")"),
        ),
        (Engine::Sqlite, TrigramQuery::Candidates(trigrams)) => Box::new(
            diesel::dsl::sql::<Bool>(
                "(users.search_id IN (SELECT rowid FROM users_search WHERE users_search MATCH ",
            )
            .bind::<Text, _>(trigrams)
            .sql(") AND users.search_key LIKE ")
            .bind::<Text, _>(like_pattern)
            .sql(" ESCAPE '\\')"),
        ),
        (Engine::Postgres, _) => Box::new(
            diesel::dsl::sql::<Bool>(
                "users.ctid = ANY(ARRAY(SELECT matching.ctid FROM users AS matching \
                 WHERE matching.search_key LIKE ",
            )
            .bind::<Text, _>(like_pattern)
            .sql(" ESCAPE '\\'))"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_terms_ask_for_three_trigrams_short_ones_for_the_phrase() {
        assert!(matches!(TrigramQuery::of("velac"), TrigramQuery::Exact(q) if q == "\"velac\""));
        assert!(matches!(
            TrigramQuery::of("grace hopper"),
            TrigramQuery::Candidates(q) if q == "\"gra\" AND \"e h\" AND \"per\""
        ));
        // Quotes inside the trigrams are written twice.
        assert!(matches!(
            TrigramQuery::of("a\"b\"cd"),
            TrigramQuery::Candidates(q) if q == r#""a""b" AND """b""" AND """cd""#
        ));
    }
}
