//! Dates as people read them. Everything is stored and shown in UTC, and says so.

use chrono::{Datelike, NaiveDateTime, TimeDelta, Timelike};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

// Written out rather than through chrono's format strings: the Users page formats
// hundreds of dates per request, and this is several times faster.

/// "3 Dec 2026, 11:05 UTC"
pub fn short(at: NaiveDateTime) -> String {
    format!(
        "{} {} {}, {:02}:{:02} UTC",
        at.day(),
        MONTHS[at.month0() as usize % 12],
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// RFC 3339, for `<time datetime>` (the page script shows it in the viewer's zone).
pub fn machine(at: NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// RFC 3339 with microseconds, for positions in a list (nothing lost in the round trip).
pub fn machine_precise(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// "in 3 days", "in 5 hours", "2 days ago", "just now".
pub fn relative(at: NaiveDateTime, now: NaiveDateTime) -> String {
    let delta = at - now;
    let future = delta > TimeDelta::zero();
    let magnitude = delta.abs();
    let amount = if magnitude >= TimeDelta::days(2) {
        plural(magnitude.num_days(), "day")
    } else if magnitude >= TimeDelta::hours(2) {
        plural(magnitude.num_hours(), "hour")
    } else if magnitude >= TimeDelta::minutes(2) {
        plural(magnitude.num_minutes(), "minute")
    } else {
        return "just now".to_owned();
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// "on Thursday 3 December 2026 at 11:05 UTC (in 7 days)", for emails.
pub fn expiry_in_words(at: NaiveDateTime, now: NaiveDateTime) -> String {
    format!(
        "on {} ({})",
        at.format("%A %-d %B %Y at %H:%M UTC"),
        relative(at, now)
    )
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = at("2026-11-26 12:00");
        assert_eq!(relative(at("2026-11-29 12:00"), now), "in 3 days");
        assert_eq!(relative(at("2026-11-26 17:00"), now), "in 5 hours");
        assert_eq!(relative(at("2026-11-24 12:00"), now), "2 days ago");
        assert_eq!(relative(at("2026-11-26 12:01"), now), "just now");
        assert_eq!(relative(at("2026-11-27 13:00"), now), "in 25 hours");
    }

    #[test]
    fn expiry_names_the_day_and_zone() {
        let now = at("2026-11-26 11:05");
        assert_eq!(
            expiry_in_words(at("2026-12-03 11:05"), now),
            "on Thursday 3 December 2026 at 11:05 UTC (in 7 days)"
        );
        assert_eq!(short(now), "26 Nov 2026, 11:05 UTC");
        assert_eq!(
            machine(now),
            now.and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
}
