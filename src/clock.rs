//! The one source of "now". Production reads the system clock; tests move it forward
//! to expire invitations or reach a retry without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{NaiveDateTime, TimeDelta, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The current time in UTC, as stored in the database.
    pub fn now(&self) -> NaiveDateTime {
        Utc::now().naive_utc() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
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
