//! What a relay may connect to, and when it tries again.
//!
//! - [`AddressPolicy`]: destinations come from users, so by default a relay never
//!   connects to loopback, private, link-local (cloud metadata at 169.254.169.254),
//!   CGNAT, multicast or unspecified addresses. The check runs on the addresses DNS
//!   returned, on every (re)connect, so a name that later resolves inward is caught.
//! - [`Backoff`]: exponential retry delays with jitter, reset once a connection has
//!   stayed up for a while, so a flapping destination is not hammered and a recovered
//!   one is back quickly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Which resolved addresses a relay may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    /// Allow internal addresses (loopback, private, link-local…): for operators whose
    /// destinations are on their own network, and for tests.
    pub allow_internal: bool,
}

impl AddressPolicy {
    /// Why `ip` is refused, or `None` when it may be used.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_internal {
            return None;
        }
        match ip {
            IpAddr::V4(v4) => v4_refusal(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4_refusal(v4),
                None => v6_refusal(v6),
            },
        }
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata)")
    } else if ip.is_private() {
        Some("a private address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a shared (CGNAT) address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("a multicast or reserved address")
    } else {
        None
    }
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("a unique local (private) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// Retry delays: `base × 2^failures`, at most `max`, each ±20 % (jitter).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// A connection up this long counts as recovered: the next failure starts over.
    stable: Duration,
    failures: u32,
    seed: u64,
}

impl Backoff {
    /// A policy starting at `base`, capped at `max`; `seed` varies the jitter per relay.
    pub fn new(base: Duration, max: Duration, stable: Duration, seed: u64) -> Self {
        Self {
            base,
            max,
            stable,
            failures: 0,
            seed: seed | 1,
        }
    }

    /// The delay before the next attempt, after a connection that lasted `uptime`
    /// (zero when it never came up).
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.stable {
            self.failures = 0;
        }
        let exp = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let raw = self.base.saturating_mul(1 << exp).min(self.max);
        // xorshift: cheap, deterministic per seed (tests), different per relay.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 401) as f64 / 1000.0 - 0.2; // −0.2 ..= +0.2
        raw.mul_f64(1.0 + jitter)
    }

    /// Attempts that failed in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        AddressPolicy::default()
            .refusal(s.parse().unwrap())
            .is_some()
    }

    #[test]
    fn internal_addresses_are_refused_by_default() {
        for a in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(refused(a), "{a}");
        }
        for a in [
            "8.8.8.8",
            "142.250.1.1",
            "100.128.0.1",
            "2001:4860:4860::8888",
        ] {
            assert!(!refused(a), "{a}");
        }
        let open = AddressPolicy {
            allow_internal: true,
        };
        assert_eq!(open.refusal("127.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn backoff_grows_caps_jitters_and_resets() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(30), s(60), 7);
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay(Duration::ZERO)).collect();
        for (i, d) in delays.iter().enumerate() {
            let nominal = s(1 << i.min(5)).min(s(30)).as_secs_f64();
            let got = d.as_secs_f64();
            assert!(
                got >= nominal * 0.8 - 1e-9 && got <= nominal * 1.2 + 1e-9,
                "{i}: {got}"
            );
        }
        assert!(delays[7] <= s(36));
        assert_eq!(b.failures(), 8);
        // A connection that stayed up starts over.
        let d = b.next_delay(s(120));
        assert!(d <= Duration::from_millis(1200), "{d:?}");
        // Two relays do not retry in lockstep.
        let mut other = Backoff::new(s(1), s(30), s(60), 8);
        let theirs: Vec<Duration> = (0..8).map(|_| other.next_delay(Duration::ZERO)).collect();
        assert_ne!(delays, theirs);
    }
}
