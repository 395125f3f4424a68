//! The one source of "now". Production reads the system clock; tests move it forward
//! to expire invitations or reach a retry without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{NaiveDateTime, TimeDelta, Timelike, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The current time in UTC, to the microsecond: what both engines store, so that a
    /// value read back compares equal to the one written.
    pub fn now(&self) -> NaiveDateTime {
        let now = Utc::now().naive_utc()
            + TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed));
        now.with_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now)
    }

    /// Moves this clock (and every copy of it) forward.
    pub fn advance(&self, by: TimeDelta) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_copy() {
        let clock = Clock::system();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(TimeDelta::days(3));
        assert!(copy.now() - before >= TimeDelta::days(3));
    }
}
