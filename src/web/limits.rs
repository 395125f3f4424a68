//! Throttles for guessing: sign-in attempts per account and per client address, and
//! requests with bad enrollment tokens per client address (governor's GCRA limiters).
//!
//! Each instance keeps its own counters; behind a load balancer an attacker gets at
//! most the allowance times the number of instances.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::metrics::Metrics;

pub struct Limits {
    sign_in_per_account: DefaultKeyedRateLimiter<String>,
    sign_in_per_address: DefaultKeyedRateLimiter<String>,
    bad_tokens_per_address: DefaultKeyedRateLimiter<String>,
    checks: AtomicU32,
    /// Refusals are counted for `GET /metrics`.
    metrics: Arc<Metrics>,
}

fn quota(burst: u32, replenish_every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(replenish_every)
        .unwrap_or_else(|| Quota::per_minute(burst))
        .allow_burst(burst)
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl Limits {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            // 5 tries, then one more every 30 seconds, for one account from anywhere.
            sign_in_per_account: RateLimiter::keyed(quota(5, Duration::from_secs(30))),
            // An office behind one address signs in more often than one person does.
            sign_in_per_address: RateLimiter::keyed(quota(30, Duration::from_secs(5))),
            // Nobody follows ten broken links a minute by accident.
            bad_tokens_per_address: RateLimiter::keyed(quota(10, Duration::from_secs(6))),
            checks: AtomicU32::new(0),
            metrics,
        }
    }
}

/// How long to wait before trying again.
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    pub fn seconds(&self) -> u64 {
        self.0.as_secs().max(1)
    }
}

impl Limits {
    /// `name` labels the refusals in the metrics.
    fn check(
        &self,
        limiter: &DefaultKeyedRateLimiter<String>,
        name: &'static str,
        key: &str,
    ) -> Result<(), RetryAfter> {
        // Forget idle keys now and then, so that the maps stay small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1000 == 999 {
            self.sign_in_per_account.retain_recent();
            self.sign_in_per_address.retain_recent();
            self.bad_tokens_per_address.retain_recent();
        }
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            self.metrics.count_rate_limit_refusal(name);
            RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Counts a sign-in attempt, before the password is checked, so that a locked
    /// account stays locked even for the right password. `email_key` is the address
    /// as accounts are looked up by ([`crate::accounts::email_key`]).
    pub fn sign_in_attempt(
        &self,
        email_key: &str,
        address: Option<&str>,
    ) -> Result<(), RetryAfter> {
        if let Some(address) = address {
            self.check(&self.sign_in_per_address, "sign_in_per_address", address)?;
        }
        self.check(&self.sign_in_per_account, "sign_in_per_account", email_key)
    }

    /// Counts a try of the one-time setup code. Per address only: a limit shared by
    /// everyone would let anyone keep the setup page locked, and an 80-bit code needs
    /// no more than a per-address limit against guessing.
    pub fn setup_attempt(&self, address: Option<&str>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(&self.sign_in_per_address, "sign_in_per_address", address),
            None => Ok(()),
        }
    }

    /// Counts a request with a token that leads nowhere.
    pub fn bad_token(&self, address: Option<&str>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(
                &self.bad_tokens_per_address,
                "bad_tokens_per_address",
                address,
            ),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_attempts_from_one_address_do_not_lock_out_another() {
        let limits = Limits::default();
        let attempts_from = |address| {
            (0..40)
                .filter(|_| limits.setup_attempt(Some(address)).is_ok())
                .count()
        };
        assert_eq!(attempts_from("10.0.0.1"), 30);
        assert!(limits.setup_attempt(Some("10.0.0.2")).is_ok());
    }

    #[test]
    fn an_account_is_locked_after_five_attempts_from_anywhere() {
        let limits = Limits::default();
        for n in 0..5 {
            let address = format!("10.0.0.{n}");
            assert!(
                limits
                    .sign_in_attempt("ada@example.com", Some(&address))
                    .is_ok()
            );
        }
        let locked = limits.sign_in_attempt("ada@example.com", Some("10.0.0.9"));
        assert!(locked.is_err_and(|retry| retry.seconds() >= 1));
        assert!(
            limits
                .sign_in_attempt("alan@example.com", Some("10.0.0.9"))
                .is_ok()
        );
    }

    #[test]
    fn bad_tokens_are_throttled_per_address() {
        let limits = Limits::default();
        for _ in 0..10 {
            assert!(limits.bad_token(Some("192.0.2.1")).is_ok());
        }
        assert!(limits.bad_token(Some("192.0.2.1")).is_err());
        assert!(limits.bad_token(Some("192.0.2.2")).is_ok());
    }
}
