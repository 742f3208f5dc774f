//! A small keyed token-bucket rate limiter (per client IP, per user).

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

/// Token buckets by key. Idle full buckets are dropped when the map grows large.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

const PRUNE_AT: usize = 100_000;

impl RateLimiter {
    /// A limiter with one rate for every key.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn check(&self, key: &str) -> bool {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> bool {
        let burst = f64::from(self.rate.burst);
        let mut map = self.buckets.lock();
        if map.len() >= PRUNE_AT {
            let rate = self.rate.per_second;
            map.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
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
}
