//! Timestamps read fast on SQLite. diesel reads SQLite's text timestamps through chrono's
//! format-string parser, trying several formats; on a page of users that parsing was the
//! largest single cost. The form diesel writes ("2026-11-26 11:05:00.123456") is parsed
//! here by hand, anything else the way diesel does. PostgreSQL's binary timestamps are
//! read as usual.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::Pg;
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::Sqlite;

use super::MultiBackend;

/// A timestamp column, for `#[diesel(deserialize_as = Stamp)]` on `NaiveDateTime` fields.
#[derive(Debug, Clone, Copy, FromSqlRow)]
pub struct Stamp(NaiveDateTime);

/// A nullable timestamp column, for `Option<NaiveDateTime>` fields.
#[derive(Debug, Clone, Copy, FromSqlRow)]
pub struct MaybeStamp(Option<NaiveDateTime>);

impl From<Stamp> for NaiveDateTime {
    fn from(stamp: Stamp) -> Self {
        stamp.0
    }
}

impl From<MaybeStamp> for Option<NaiveDateTime> {
    fn from(stamp: MaybeStamp) -> Self {
        stamp.0
    }
}

impl FromSql<Timestamp, Sqlite> for Stamp {
    fn from_sql(
        mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        if let Some(parsed) = parse(value.read_text()) {
            return Ok(Self(parsed));
        }
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Self)
    }
}

impl FromSql<Timestamp, Pg> for Stamp {
    fn from_sql(
        value: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Self)
    }
}

impl FromSql<Timestamp, MultiBackend> for Stamp {
    fn from_sql(
        value: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        value.from_sql::<Self, Timestamp>()
    }
}

impl FromSql<Nullable<Timestamp>, MultiBackend> for MaybeStamp {
    fn from_sql(
        value: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <Stamp as FromSql<Timestamp, MultiBackend>>::from_sql(value)
            .map(|stamp| Self(Some(stamp.0)))
    }

    fn from_nullable_sql(
        value: Option<<MultiBackend as diesel::backend::Backend>::RawValue<'_>>,
    ) -> deserialize::Result<Self> {
        match value {
            Some(value) => Self::from_sql(value),
            None => Ok(Self(None)),
        }
    }
}

/// "YYYY-MM-DD HH:MM:SS" with an optional fraction of up to nine digits.
fn parse(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match b.get(19) {
        None => 0,
        Some(b'.') if b.len() > 20 && b.len() <= 29 => {
            let digits = b.len() - 20;
            number(20, b.len())? * 10u32.pow(9 - u32::try_from(digits).ok()?)
        }
        Some(_) => return None,
    };
    NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?
    .and_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_diesel_writes_and_refuses_the_rest() {
        let at = NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_micro_opt(11, 5, 7, 123_456)
            .unwrap();
        for text in [
            at.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            "2026-11-26 11:05:07.123456".to_owned(),
            "2026-11-26 11:05:07.123456000".to_owned(),
        ] {
            assert_eq!(parse(&text), Some(at), "{text}");
        }
        assert_eq!(
            parse("2026-11-26 11:05:07"),
            Some(at.with_nanosecond(0).unwrap())
        );
        for junk in [
            "",
            "2026-11-26",
            "2026-13-01 00:00:00",
            "2026-11-26T11:05:07",
            "2026-11-26 11:05:07.",
            "2026-11-26 11:05:07.1234567890",
        ] {
            assert_eq!(parse(junk), None, "{junk}");
        }
    }

    use chrono::Timelike;
}
