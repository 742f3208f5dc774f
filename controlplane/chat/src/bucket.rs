//! Token buckets in virtual time (`now` in milliseconds is passed in), keyed by user or
//! address, with a bounded number of keys. The API's per-IP and per-user limiter
//! (`weir_api::ratelimit`) is these buckets behind a mutex.

use std::collections::HashMap;

/// Bucket size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Messages allowed in a burst.
    pub burst: u32,
    /// Messages per second sustained.
    pub per_second: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

/// Token buckets by key, at most `max_keys`: when full, buckets that have refilled (as
/// good as absent) are forgotten, then if needed the oldest sixteenth.
#[derive(Debug)]
pub struct Buckets {
    rate: Rate,
    max_keys: usize,
    map: HashMap<String, Bucket>,
}

impl Buckets {
    /// Buckets with one rate for every key.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys: max_keys.max(1),
            map: HashMap::new(),
        }
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn refilled(&self, b: &Bucket, now_ms: i64) -> f64 {
        let elapsed = (now_ms - b.last_ms).max(0) as f64 / 1000.0;
        (b.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst))
    }

    /// Takes one token for `key` at `now_ms`: `Ok(())`, or `Err(ms)` until one is there.
    pub fn take(&mut self, key: &str, now_ms: i64) -> Result<(), u64> {
        if self.map.len() >= self.max_keys && !self.map.contains_key(key) {
            self.evict(now_ms);
        }
        let burst = f64::from(self.rate.burst);
        let cur = self.map.get(key).copied().unwrap_or(Bucket {
            tokens: burst,
            last_ms: now_ms,
        });
        let tokens = self.refilled(&cur, now_ms);
        if tokens >= 1.0 {
            self.map.insert(
                key.to_string(),
                Bucket {
                    tokens: tokens - 1.0,
                    last_ms: now_ms,
                },
            );
            Ok(())
        } else {
            self.map.insert(
                key.to_string(),
                Bucket {
                    tokens,
                    last_ms: now_ms,
                },
            );
            let wait = if self.rate.per_second > 0.0 {
                ((1.0 - tokens) / self.rate.per_second * 1000.0).ceil() as u64
            } else {
                u64::MAX
            };
            Err(wait.max(1))
        }
    }

    fn evict(&mut self, now_ms: i64) {
        let burst = f64::from(self.rate.burst);
        let full: Vec<String> = self
            .map
            .iter()
            .filter(|(_, b)| self.refilled(b, now_ms) >= burst)
            .map(|(k, _)| k.clone())
            .collect();
        for k in full {
            self.map.remove(&k);
        }
        if self.map.len() >= self.max_keys {
            let mut by_age: Vec<(i64, String)> = self
                .map
                .iter()
                .map(|(k, b)| (b.last_ms, k.clone()))
                .collect();
            let n = (by_age.len() / 16).max(1);
            if n < by_age.len() {
                // The n oldest first, unordered: no full sort of every key.
                by_age.select_nth_unstable(n);
            }
            for (_, k) in by_age.into_iter().take(n) {
                self.map.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_in_virtual_time() {
        let mut b = Buckets::new(
            Rate {
                burst: 2,
                per_second: 1.0,
            },
            10,
        );
        assert_eq!(b.take("a", 0), Ok(()));
        assert_eq!(b.take("a", 0), Ok(()));
        assert_eq!(b.take("a", 0), Err(1000));
        assert_eq!(b.take("b", 0), Ok(()), "keys are independent");
        assert_eq!(b.take("a", 500), Err(500));
        assert_eq!(b.take("a", 1000), Ok(()));
        assert_eq!(b.take("a", 1000), Err(1000));
    }

    #[test]
    fn keys_are_bounded() {
        let mut b = Buckets::new(
            Rate {
                burst: 1,
                per_second: 0.001,
            },
            50,
        );
        assert_eq!(b.take("hot", 0), Ok(()));
        for i in 0..5_000i64 {
            let _ = b.take(&format!("k{i}"), i);
            if i % 10 == 0 {
                assert!(b.take("hot", i).is_err(), "hot forgotten at {i}");
            }
            assert!(b.len() <= 50);
        }
    }
}
