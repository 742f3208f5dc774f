//! A small keyed token-bucket rate limiter (per client IP, per user), with a bounded
//! number of keys.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

/// Bucket size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests allowed in a burst.
    pub burst: u32,
    /// Requests per second sustained.
    pub per_second: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets by key, at most `max_keys` of them: when the map is full, buckets that
/// have refilled (as good as absent) are dropped, and if that is not enough, the sixteenth
/// of them used longest ago.
pub struct RateLimiter {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
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
            buckets: Mutex::new(HashMap::new()),
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
        let burst = f64::from(self.rate.burst);
        let mut map = self.buckets.lock();
        if map.len() >= self.max_keys && !map.contains_key(key) {
            let rate = self.rate.per_second;
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
            if map.len() >= self.max_keys {
                let mut by_age: Vec<(Instant, String)> =
                    map.iter().map(|(k, b)| (b.last, k.clone())).collect();
                let n = (by_age.len() / 16).max(1);
                if n < by_age.len() {
                    by_age.select_nth_unstable(n);
                }
                for (_, k) in by_age.into_iter().take(n) {
                    map.remove(&k);
                }
            }
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate.per_second).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
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
