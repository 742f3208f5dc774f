//! Identifiers: time-ordered, random, URL- and key-safe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Fills `buf` with OS randomness. Panics only if the OS has no entropy source at all,
/// which no supported platform lacks.
pub fn random_bytes(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the OS random source is unavailable");
}

/// A new id: 16 hex digits of (milliseconds << 16 | sequence) then 12 hex digits of
/// randomness. Ids from one process sort strictly by creation; across processes by the
/// millisecond (lists come back in creation order).
pub fn new_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = (now_ms().max(0) as u64) << 16;
    let mut prev = LAST.load(Ordering::Relaxed);
    let stamp = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    let mut rnd = [0u8; 6];
    random_bytes(&mut rnd);
    let mut s = format!("{stamp:016x}");
    for b in rnd {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// True when `id` is made of the characters ids, slugs and usernames may use.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_safe() {
        let a = new_id();
        let b = new_id();
        assert!(a < b);
        assert!(is_safe_id(&a));
        assert_eq!(a.len(), 28);
        assert!(!is_safe_id("a/b"));
        assert!(!is_safe_id(""));
    }
}
