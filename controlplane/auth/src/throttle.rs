//! Per-account throttling of failed logins, whatever the source address.
//!
//! Every attempt on an account counts as a failure from the moment it starts (so parallel
//! guesses are counted too); a successful login clears the account. After
//! [`ThrottleConfig::free_failures`] failures in a row, each further attempt has to wait
//! after the previous one: [`ThrottleConfig::base_delay`], doubling per failure up to
//! [`ThrottleConfig::max_delay`]. The table is bounded: accounts idle for longer than their
//! delay and [`ThrottleConfig::forget_after`] are dropped, and when it is full the accounts
//! whose last failure is oldest go first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Limits of the login throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures in a row allowed without waiting.
    pub free_failures: u32,
    /// Wait after the first failure beyond the free ones; it doubles with each further one.
    pub base_delay: Duration,
    /// Longest wait.
    pub max_delay: Duration,
    /// An account with no attempt for this long (and past its wait) is forgotten.
    pub forget_after: Duration,
    /// Most accounts tracked at once.
    pub max_accounts: usize,
}

impl Default for ThrottleConfig {
    /// 5 free failures, then 1 s, 2 s, 4 s … up to 15 minutes between attempts; forgotten
    /// after an hour of quiet; 100 000 accounts tracked at most (a few MiB).
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
            max_accounts: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// The throttle: failure counts by account key.
pub struct LoginThrottle {
    cfg: ThrottleConfig,
    accounts: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("cfg", &self.cfg)
            .field("tracked", &self.tracked())
            .finish()
    }
}

impl LoginThrottle {
    /// An empty throttle.
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// How many accounts are tracked.
    pub fn tracked(&self) -> usize {
        self.accounts.lock().len()
    }

    /// The wait imposed after `failures` failures in a row.
    fn delay(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.cfg.free_failures) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(over).unwrap_or(u32::MAX);
        self.cfg
            .base_delay
            .saturating_mul(factor)
            .min(self.cfg.max_delay)
    }

    fn forgettable(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.last) >= self.delay(e.failures).max(self.cfg.forget_after)
    }

    /// Starts an attempt on `key`: `Err(wait)` while the account must wait, else the
    /// attempt is counted as a failure until [`LoginThrottle::succeeded`] or
    /// [`LoginThrottle::cancel`].
    pub fn begin(&self, key: &str) -> Result<(), Duration> {
        self.begin_at(key, Instant::now())
    }

    fn begin_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.accounts.lock();
        if let Some(e) = map.get_mut(key) {
            let wait = self.delay(e.failures);
            let elapsed = now.saturating_duration_since(e.last);
            if elapsed < wait {
                return Err(wait - elapsed);
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            return Ok(());
        }
        if map.len() >= self.cfg.max_accounts {
            self.make_room(&mut map, now);
        }
        map.insert(
            key.to_string(),
            Entry {
                failures: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// Drops forgettable accounts; if that frees nothing, the sixteenth of the table (at
    /// least one) whose last attempt is oldest.
    fn make_room(&self, map: &mut HashMap<String, Entry>, now: Instant) {
        map.retain(|_, e| !self.forgettable(e, now));
        if map.len() < self.cfg.max_accounts {
            return;
        }
        let mut by_age: Vec<(Instant, String)> =
            map.iter().map(|(k, e)| (e.last, k.clone())).collect();
        let n = (by_age.len() / 16).max(1);
        if n < by_age.len() {
            by_age.select_nth_unstable(n);
        }
        for (_, k) in by_age.into_iter().take(n) {
            map.remove(&k);
        }
    }

    /// The attempt on `key` succeeded: the account starts afresh.
    pub fn succeeded(&self, key: &str) {
        self.accounts.lock().remove(key);
    }

    /// The attempt on `key` could not be judged (server busy, storage error): it is not
    /// counted.
    pub fn cancel(&self, key: &str) {
        let mut map = self.accounts.lock();
        if let Some(e) = map.get_mut(key) {
            e.failures = e.failures.saturating_sub(1);
            if e.failures == 0 {
                map.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_accounts: usize) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            free_failures: 3,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
            forget_after: Duration::from_secs(60),
            max_accounts,
        })
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_success_clears() {
        let t = throttle(100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.begin_at("a", t0), Ok(()));
        }
        // 3 free failures used: the 4th attempt waits 2 s, then 4 s, 8 s, 10 s (cap).
        assert_eq!(t.begin_at("a", t0), Err(Duration::from_secs(2)));
        assert_eq!(t.begin_at("b", t0), Ok(()), "accounts are independent");
        let mut now = t0 + Duration::from_secs(2);
        assert_eq!(t.begin_at("a", now), Ok(()));
        assert_eq!(t.begin_at("a", now), Err(Duration::from_secs(4)));
        now += Duration::from_secs(4);
        assert_eq!(t.begin_at("a", now), Ok(()));
        assert_eq!(t.begin_at("a", now), Err(Duration::from_secs(8)));
        now += Duration::from_secs(8);
        assert_eq!(t.begin_at("a", now), Ok(()));
        assert_eq!(t.begin_at("a", now), Err(Duration::from_secs(10)));
        now += Duration::from_secs(10);
        assert_eq!(t.begin_at("a", now), Ok(()));
        assert_eq!(t.begin_at("a", now), Err(Duration::from_secs(10)));
        t.succeeded("a");
        assert_eq!(t.begin_at("a", now), Ok(()), "a success clears the account");
    }

    #[test]
    fn cancelled_attempts_do_not_count() {
        let t = throttle(100);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(t.begin_at("a", t0), Ok(()));
            t.cancel("a");
        }
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let t = throttle(64);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            assert_eq!(t.begin_at(&format!("acct{i}"), now), Ok(()));
            assert!(t.tracked() <= 64);
        }
        // The most recent accounts are the ones kept.
        let now = t0 + Duration::from_millis(10_000);
        for _ in 0..2 {
            t.begin_at("acct9999", now).ok();
        }
        assert!(t.begin_at("acct9999", now).is_err());
        // Idle accounts are forgotten when room is needed.
        let later = now + Duration::from_secs(61);
        let t2 = throttle(2);
        t2.begin_at("x", now).ok();
        t2.begin_at("y", now).ok();
        t2.begin_at("z", later).ok();
        assert_eq!(t2.tracked(), 1);
    }
}
