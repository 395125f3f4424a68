//! Throttles for guessing: sign-in attempts per account and per client address, and
//! requests with bad enrollment tokens per client address (governor's GCRA limiters).
//!
//! Each instance keeps its own counters; behind a load balancer an attacker gets at
//! most the allowance times the number of instances.
//!
//! Limits per client address key an IPv6 client by its /64: one subscriber usually gets
//! a whole /64 and can pick any address in it. Limits per account key on the address
//! typed, which an attacker can change with every try: what holds against that is the
//! budget of failed sign-ins shared by everyone (per instance), and the few
//! password-hashing slots behind it (`operations::hashing`).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::metrics::Metrics;

pub struct Limits {
    sign_in_per_account: DefaultKeyedRateLimiter<String>,
    sign_in_per_address: DefaultKeyedRateLimiter<String>,
    bad_tokens_per_address: DefaultKeyedRateLimiter<String>,
    /// Machine requests (SCIM, the access-key API) with a missing, wrong or revoked
    /// credential.
    bad_credentials_per_address: DefaultKeyedRateLimiter<String>,
    /// Failed sign-ins from anyone, for anyone.
    failed_sign_ins: DefaultDirectRateLimiter,
    /// Set when a failure found the budget spent: until then every sign-in is refused
    /// before its password is hashed.
    sign_in_closed_until: Mutex<Option<Instant>>,
    /// Addresses that spent their bad credentials, refused until then before any
    /// credential is looked up (as a locked sign-in is before hashing).
    credentials_closed_until: Mutex<std::collections::HashMap<String, Instant>>,
    checks: AtomicU32,
    /// Refusals are counted for `GET /metrics`.
    metrics: Arc<Metrics>,
}

/// The key of a client address in the per-address limits: an IPv4 address as it is
/// (an IPv4-mapped IPv6 one too), an IPv6 address by its /64.
pub fn address_key(address: &str) -> String {
    let ip = match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical(),
        // Not an address (client_ip only gives addresses): keyed as it is.
        Err(_) => return address.to_owned(),
    };
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(network))
        }
    }
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
            // As for a person's sign-in from one address: a few mistakes, then slowly.
            // Good credentials are never counted: an identity provider's sync is
            // thousands of requests a minute from one address.
            bad_credentials_per_address: RateLimiter::keyed(quota(10, Duration::from_secs(6))),
            // Ten a second, twenty at once: far beyond a team mistyping passwords, and
            // under what the hashing slots could take, so that a flood is turned away
            // before it costs any CPU.
            failed_sign_ins: RateLimiter::direct(quota(20, Duration::from_millis(100))),
            sign_in_closed_until: Mutex::new(None),
            credentials_closed_until: Mutex::default(),
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
        key: String,
    ) -> Result<(), RetryAfter> {
        // Forget idle keys now and then, so that the maps stay small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1000 == 999 {
            self.sign_in_per_account.retain_recent();
            self.sign_in_per_address.retain_recent();
            self.bad_tokens_per_address.retain_recent();
            self.bad_credentials_per_address.retain_recent();
            if let Ok(mut closed) = self.credentials_closed_until.lock() {
                let now = Instant::now();
                closed.retain(|_, until| *until > now);
            }
        }
        limiter.check_key(&key).map_err(|not_until| {
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
        self.sign_in_open()?;
        if let Some(address) = address {
            self.check(
                &self.sign_in_per_address,
                "sign_in_per_address",
                address_key(address),
            )?;
        }
        self.check(
            &self.sign_in_per_account,
            "sign_in_per_account",
            email_key.to_owned(),
        )
    }

    /// Counts a failed sign-in against the budget shared by everyone; once it is spent,
    /// sign-ins are refused until it has room again.
    pub fn sign_in_failed(&self) {
        if let Err(not_until) = self.failed_sign_ins.check() {
            let reopens = Instant::now() + not_until.wait_time_from(DefaultClock::default().now());
            if let Ok(mut closed_until) = self.sign_in_closed_until.lock() {
                *closed_until = Some(closed_until.map_or(reopens, |c| c.max(reopens)));
            }
        }
    }

    fn sign_in_open(&self) -> Result<(), RetryAfter> {
        let closed_until = self.sign_in_closed_until.lock().ok().and_then(|c| *c);
        match closed_until {
            Some(until) if until > Instant::now() => {
                self.metrics.count_rate_limit_refusal("failed_sign_ins");
                Err(RetryAfter(until.saturating_duration_since(Instant::now())))
            }
            _ => Ok(()),
        }
    }

    /// Counts a try of the one-time setup code. Per address only: a limit shared by
    /// everyone would let anyone keep the setup page locked, and an 80-bit code needs
    /// no more than a per-address limit against guessing.
    pub fn setup_attempt(&self, address: Option<&str>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(
                &self.sign_in_per_address,
                "sign_in_per_address",
                address_key(address),
            ),
            None => Ok(()),
        }
    }

    /// Whether machine requests (SCIM, signed API calls) from this address are taken at
    /// all: not after it sent too many bad credentials, nor while failed sign-ins are
    /// closed for everyone. Checked before any credential is looked up.
    pub fn machine_request_open(&self, address: Option<&str>) -> Result<(), RetryAfter> {
        self.sign_in_open()?;
        let Some(address) = address else {
            return Ok(());
        };
        let key = address_key(address);
        let until = self
            .credentials_closed_until
            .lock()
            .ok()
            .and_then(|closed| closed.get(&key).copied());
        match until {
            Some(until) if until > Instant::now() => {
                self.metrics
                    .count_rate_limit_refusal("bad_credentials_per_address");
                Err(RetryAfter(until.saturating_duration_since(Instant::now())))
            }
            _ => Ok(()),
        }
    }

    /// Counts a missing, wrong or revoked credential (a SCIM token, an access key, a
    /// signature or its date) like a failed sign-in: against the address, and against
    /// the budget shared by everyone.
    pub fn credential_refused(&self, address: Option<&str>) {
        self.sign_in_failed();
        let Some(address) = address else {
            return;
        };
        let key = address_key(address);
        if let Err(not_until) = self.bad_credentials_per_address.check_key(&key) {
            let reopens = Instant::now() + not_until.wait_time_from(DefaultClock::default().now());
            if let Ok(mut closed) = self.credentials_closed_until.lock() {
                closed.insert(key, reopens);
            }
        }
    }

    /// [`Self::credential_refused`], then whether the address may still be answered
    /// (401) or is now refused (429).
    pub fn bad_credential(&self, address: Option<&str>) -> Result<(), RetryAfter> {
        self.credential_refused(address);
        self.machine_request_open(address)
    }

    /// Counts a request with a token that leads nowhere.
    pub fn bad_token(&self, address: Option<&str>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(
                &self.bad_tokens_per_address,
                "bad_tokens_per_address",
                address_key(address),
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
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(address_key("2001:db8:1:3::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn rotating_addresses_within_a_64_does_not_escape_the_limit() {
        let limits = Limits::default();
        let allowed = (0..40u32)
            .filter(|n| {
                let address = format!("2001:db8:5:6:{n:x}::{n:x}");
                limits.setup_attempt(Some(&address)).is_ok()
            })
            .count();
        assert_eq!(allowed, 30);
        assert!(limits.setup_attempt(Some("2001:db8:5:7::1")).is_ok());
    }

    #[test]
    fn failed_sign_ins_beyond_the_budget_close_sign_in_for_everyone() {
        let limits = Limits::default();
        let mut failures = 0;
        // Every attempt from an address and for an account of its own.
        while limits
            .sign_in_attempt(
                &format!("nobody{failures}@example.com"),
                Some(&format!("10.1.{}.{}", failures / 200, failures % 200)),
            )
            .is_ok()
        {
            limits.sign_in_failed();
            failures += 1;
            assert!(failures < 100, "never closed");
        }
        assert!(failures >= 20, "closed after {failures}");
        let closed = limits.sign_in_attempt("ada@example.com", Some("192.0.2.1"));
        assert!(closed.is_err_and(|retry| retry.seconds() >= 1));
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
