//! Tags on users (key and value, as the Alexa for Business API's TagResource sets them):
//! stored per user, shown on the user's page, and searchable on the Users page as
//! `tag:Key=Value`.

use diesel::prelude::*;

use super::InvalidInput;
use crate::db::schema::user_tags;
use crate::db::{DbConnection, insert_rows};

/// At most this many tags on one user (the source service's per-resource limit).
pub const MAX_TAGS_PER_USER: usize = 50;
pub const MAX_KEY_LENGTH: usize = 128;
pub const MAX_VALUE_LENGTH: usize = 256;
/// What the Users page's search box reads as a tag filter.
pub const SEARCH_PREFIX: &str = "tag:";

/// A tag whose key and value hold only what the source service allowed: letters,
/// digits, spaces and `_ . : / = + - @` (its pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    key: String,
    value: String,
}

fn allowed(c: char) -> bool {
    c.is_alphanumeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

impl Tag {
    pub fn new(key: &str, value: &str) -> Result<Self, InvalidInput> {
        Self::check_key(key)?;
        if value.chars().count() > MAX_VALUE_LENGTH {
            return Err(InvalidInput::new(format!(
                "A tag value can be at most {MAX_VALUE_LENGTH} characters long."
            )));
        }
        if !value.chars().all(allowed) {
            return Err(InvalidInput::new(
                "A tag value may hold letters, digits, spaces and _ . : / = + - @ only.",
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// A key alone, as UntagResource names them.
    pub fn check_key(key: &str) -> Result<(), InvalidInput> {
        if key.is_empty() || key.chars().count() > MAX_KEY_LENGTH {
            return Err(InvalidInput::new(format!(
                "A tag key must be 1 to {MAX_KEY_LENGTH} characters long."
            )));
        }
        if !key.chars().all(allowed) {
            return Err(InvalidInput::new(
                "A tag key may hold letters, digits, spaces and _ . : / = + - @ only.",
            ));
        }
        Ok(())
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// `tag:Key=Value` from the Users page's search box (the key ends at the first `=`).
    pub fn from_search(term: &str) -> Option<Self> {
        let rest = term.trim().strip_prefix(SEARCH_PREFIX)?;
        let (key, value) = rest.split_once('=')?;
        Self::new(key.trim(), value.trim()).ok()
    }
}

#[derive(Insertable)]
#[diesel(table_name = user_tags)]
struct TagRow {
    user_id: String,
    tag_key: String,
    tag_value: String,
}

/// This user's tags, by key.
pub fn of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<Tag>> {
    let rows: Vec<(String, String)> = user_tags::table
        .filter(user_tags::user_id.eq(user_id))
        .order(user_tags::tag_key)
        .select((user_tags::tag_key, user_tags::tag_value))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect())
}

/// Adds or replaces these tags; runs in the caller's transaction. `false` when the
/// user would end up with more than [`MAX_TAGS_PER_USER`] (nothing is changed then).
pub fn set(conn: &mut DbConnection, user_id: &str, tags: &[Tag]) -> QueryResult<bool> {
    let keys: Vec<&str> = tags.iter().map(Tag::key).collect();
    let kept: i64 = user_tags::table
        .filter(user_tags::user_id.eq(user_id))
        .filter(user_tags::tag_key.ne_all(&keys))
        .count()
        .get_result(conn)?;
    let mut distinct = keys.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if usize::try_from(kept).unwrap_or(usize::MAX) + distinct.len() > MAX_TAGS_PER_USER {
        return Ok(false);
    }
    diesel::delete(
        user_tags::table
            .filter(user_tags::user_id.eq(user_id))
            .filter(user_tags::tag_key.eq_any(&keys)),
    )
    .execute(conn)?;
    // The last of repeated keys wins, as a map would.
    let mut rows: Vec<TagRow> = Vec::with_capacity(tags.len());
    for tag in tags.iter().rev() {
        if !rows.iter().any(|row| row.tag_key == tag.key) {
            rows.push(TagRow {
                user_id: user_id.to_owned(),
                tag_key: tag.key.clone(),
                tag_value: tag.value.clone(),
            });
        }
    }
    insert_rows!(conn, user_tags::table, rows)?;
    Ok(true)
}

/// Removes the tags with these keys; runs in the caller's transaction.
pub fn remove(conn: &mut DbConnection, user_id: &str, keys: &[String]) -> QueryResult<usize> {
    diesel::delete(
        user_tags::table
            .filter(user_tags::user_id.eq(user_id))
            .filter(user_tags::tag_key.eq_any(keys)),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_hold_what_the_source_allowed() {
        assert!(Tag::new("team", "north-east 2").is_ok());
        assert!(Tag::new("", "x").is_err());
        assert!(Tag::new("a<b", "x").is_err());
        assert!(Tag::new("k", "line\nbreak").is_err());
        assert!(Tag::new(&"k".repeat(129), "").is_err());
        assert_eq!(
            Tag::from_search(" tag:team=North "),
            Some(Tag::new("team", "North").unwrap())
        );
        assert_eq!(Tag::from_search("team=North"), None);
    }
}
