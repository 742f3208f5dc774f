//! A keyed token-bucket rate limiter (per client IP, per user) with a bounded number of
//! keys: the chat gateway's buckets ([`weir_chat::bucket::Buckets`], sans-IO, in
//! milliseconds) behind a mutex, on the wall clock.

use std::time::Instant;

use parking_lot::Mutex;
use weir_chat::bucket::Buckets;
pub use weir_chat::bucket::Rate;

/// Token buckets by key, at most `max_keys` of them: when the map is full, buckets that
/// have refilled (as good as absent) are dropped, and if that is not enough, the sixteenth
/// of them used longest ago.
pub struct RateLimiter {
    rate: Rate,
    max_keys: usize,
    /// Time zero of the buckets' millisecond clock.
    epoch: Instant,
    buckets: Mutex<Buckets>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate)
            .field("max_keys", &self.max_keys)
            .field("keys", &self.len())
            .finish()
    }
}

/// Default bound on the keys of one limiter (about 10 MiB at most).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

impl RateLimiter {
    /// A limiter with one rate for every key, and [`DEFAULT_MAX_KEYS`] keys at most.
    pub fn new(rate: Rate) -> Self {
        Self::with_max_keys(rate, DEFAULT_MAX_KEYS)
    }

    /// A limiter holding at most `max_keys` keys (at least 1).
    pub fn with_max_keys(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys: max_keys.max(1),
            epoch: Instant::now(),
            buckets: Mutex::new(Buckets::new(rate, max_keys)),
        }
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.buckets.lock().len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn check(&self, key: &str) -> bool {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> bool {
        let ms = i64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(i64::MAX);
        self.buckets.lock().take(key, ms).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(Rate {
            burst: 3,
            per_second: 2.0,
        });
        let t0 = Instant::now();
        assert!(l.check_at("a", t0));
        assert!(l.check_at("a", t0));
        assert!(l.check_at("a", t0));
        assert!(!l.check_at("a", t0));
        assert!(l.check_at("b", t0), "keys are independent");
        assert!(l.check_at("a", t0 + Duration::from_millis(500)));
        assert!(!l.check_at("a", t0 + Duration::from_millis(500)));
    }

    #[test]
    fn keys_are_bounded_and_recent_ones_kept() {
        let l = RateLimiter::with_max_keys(
            Rate {
                burst: 2,
                per_second: 0.001,
            },
            100,
        );
        let t0 = Instant::now();
        assert!(l.check_at("hot", t0));
        assert!(l.check_at("hot", t0));
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(i);
            l.check_at(&format!("k{i}"), now);
            // The attacked key stays in use, so it stays tracked (and empty).
            if i % 50 == 0 {
                assert!(!l.check_at("hot", now), "hot was forgotten at {i}");
            }
            assert!(l.len() <= 100, "{} keys", l.len());
        }
    }
}
