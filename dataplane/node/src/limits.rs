//! Connection limits shared by every shard: per client address and per node, for one
//! listener kind (HTTP, RTMP).
//!
//! An accepted connection takes a [`ConnPermit`] before anything else runs for it; over a
//! limit it is closed at once and counted in `weir_connections_refused_total{listener,
//! reason}`, with a log line at most every [`LOG_EVERY`] per listener. Addresses are
//! grouped as an ISP hands them out: an IPv4 address alone, an IPv6 address by its /64
//! (one customer's prefix), an IPv4-mapped IPv6 address as the IPv4 address.
//!
//! The per-address counts live in [`BUCKETS`] mutex-guarded maps keyed by a random hash
//! (accepts on different shards rarely meet on one lock). A map only holds addresses
//! with open connections, and every open connection holds a permit within the node-wide
//! limit, so the maps never hold more than that many entries.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Metric: connections closed at accept, by `listener` and `reason` (`per_ip`,
/// `node`, `shard`).
pub const REFUSED: &str = "weir_connections_refused_total";
/// Metric: connections ended by a deadline, by `listener` and `deadline` (`head`,
/// `publish`, `idle`, `write`).
pub const TIMED_OUT: &str = "weir_connections_timed_out_total";
/// Shortest time between two log lines about refused connections of one listener.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Number of per-address maps.
pub const BUCKETS: usize = 16;

/// How client addresses are counted: one IPv4 address, or one IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrGroup {
    /// An IPv4 address (also when seen as IPv4-mapped IPv6).
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

impl AddrGroup {
    /// The group `ip` is counted in.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrGroup::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrGroup::V4(u32::from(v4)),
                None => AddrGroup::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Its address (group) already has the most connections allowed.
    #[error("too many connections from this address")]
    PerIp,
    /// The node already has the most connections of this listener allowed.
    #[error("too many connections on this node")]
    Node,
    /// The accepting shard already has the most connections it takes.
    #[error("too many connections on this shard")]
    Shard,
}

impl Refusal {
    /// The `reason` label of [`REFUSED`].
    pub fn label(self) -> &'static str {
        match self {
            Refusal::PerIp => "per_ip",
            Refusal::Node => "node",
            Refusal::Shard => "shard",
        }
    }
}

/// The connection limits of one listener kind, shared by all shards.
#[derive(Debug)]
pub struct ConnLimits {
    listener: &'static str,
    per_ip: u32,
    node_max: usize,
    open: AtomicUsize,
    hasher: RandomState,
    buckets: [Mutex<HashMap<AddrGroup, u32>>; BUCKETS],
    log: LogLimiter,
}

impl ConnLimits {
    /// Limits for `listener` (a metric label: `http`, `rtmp`): at most `per_ip`
    /// connections per address group (0: no per-address limit) and `node_max` in all.
    pub fn new(listener: &'static str, per_ip: u32, node_max: usize) -> Arc<Self> {
        Arc::new(Self {
            listener,
            per_ip,
            node_max: node_max.max(1),
            open: AtomicUsize::new(0),
            hasher: RandomState::new(),
            buckets: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            log: LogLimiter::new(LOG_EVERY),
        })
    }

    /// Connections holding a permit.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Address groups with open connections (bounded by the node-wide limit).
    #[cfg(test)]
    pub fn tracked_addresses(&self) -> usize {
        self.buckets.iter().map(|b| lock(b).len()).sum()
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let prev = self.open.fetch_add(1, Ordering::AcqRel);
        if prev >= self.node_max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Node);
        }
        let group = (self.per_ip > 0).then(|| AddrGroup::of(ip));
        if let Some(g) = group {
            let mut map = lock(self.bucket(&g));
            let n = map.entry(g).or_insert(0);
            if *n >= self.per_ip {
                drop(map);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerIp);
            }
            *n += 1;
        }
        Ok(ConnPermit {
            limits: self.clone(),
            group,
        })
    }

    /// Counts a refused connection and logs it, at most once per [`LOG_EVERY`].
    pub fn refused(&self, peer: std::net::SocketAddr, why: Refusal) {
        metrics::counter!(REFUSED, "listener" => self.listener, "reason" => why.label())
            .increment(1);
        match self.log.allow() {
            Some(more) => tracing::warn!(
                listener = self.listener,
                %peer,
                reason = %why,
                refused_since_last_line = more,
                "connection refused"
            ),
            None => {
                tracing::debug!(listener = self.listener, %peer, reason = %why, "connection refused")
            }
        }
    }

    fn bucket(&self, g: &AddrGroup) -> &Mutex<HashMap<AddrGroup, u32>> {
        &self.buckets[(self.hasher.hash_one(g) as usize) % BUCKETS]
    }

    fn release(&self, group: Option<AddrGroup>) {
        if let Some(g) = group {
            let mut map = lock(self.bucket(&g));
            if let Some(n) = map.get_mut(&g) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&g);
                }
            }
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Lets a log line through at most once per interval, shared by every shard; the lines
/// held back meanwhile are counted (and may go out at debug level instead).
#[derive(Debug)]
pub struct LogLimiter {
    every_ms: u64,
    started: Instant,
    /// Milliseconds since `started` of the last line let through (0: none yet).
    last_ms: AtomicU64,
    held_back: AtomicU64,
}

impl LogLimiter {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every_ms: every.as_millis() as u64,
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may go out now.
    pub fn allow(&self) -> Option<u64> {
        let now = (self.started.elapsed().as_millis() as u64).max(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= self.every_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::AcqRel));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Logs a refused publish (bad, revoked or unknown key, busy channel…) of any ingest: a
/// warning at most once a second node-wide (with the count held back since the last
/// one), the others at debug level, so a flood of bad keys cannot flood the log.
pub fn log_refused_publish(
    ingest: &'static str,
    peer: &dyn std::fmt::Display,
    code: &dyn std::fmt::Display,
    reason: &str,
) {
    static LOG: std::sync::LazyLock<LogLimiter> =
        std::sync::LazyLock::new(|| LogLimiter::new(Duration::from_secs(1)));
    match LOG.allow() {
        Some(more) => tracing::warn!(
            ingest,
            %peer,
            %code,
            %reason,
            refused_since_last_line = more,
            "publish refused"
        ),
        None => tracing::debug!(ingest, %peer, %code, %reason, "publish refused"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct ConnPermit {
    limits: Arc<ConnLimits>,
    group: Option<AddrGroup>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limits.release(self.group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ipv6_is_grouped_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddrGroup::of(ip("2001:db8:1:2:aaaa::1")),
            AddrGroup::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            AddrGroup::of(ip("2001:db8:1:2::1")),
            AddrGroup::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrGroup::of(ip("::ffff:192.0.2.7")),
            AddrGroup::of(ip("192.0.2.7"))
        );
        assert_ne!(
            AddrGroup::of(ip("192.0.2.7")),
            AddrGroup::of(ip("192.0.2.8"))
        );
    }

    #[test]
    fn per_address_limit_and_release() {
        let l = ConnLimits::new("http", 2, 100);
        let a1 = l.try_acquire(ip("10.0.0.1")).expect("first");
        let _a2 = l.try_acquire(ip("10.0.0.1")).expect("second");
        assert_eq!(l.try_acquire(ip("10.0.0.1")).err(), Some(Refusal::PerIp));
        // Another address is not affected; a /64 neighbour shares the count.
        let _b = l.try_acquire(ip("10.0.0.2")).expect("other address");
        let _c1 = l.try_acquire(ip("2001:db8::1")).expect("v6");
        let _c2 = l.try_acquire(ip("2001:db8::2")).expect("same /64");
        assert_eq!(l.try_acquire(ip("2001:db8::3")).err(), Some(Refusal::PerIp));
        assert_eq!(l.open(), 5);
        drop(a1);
        let _a3 = l
            .try_acquire(ip("10.0.0.1"))
            .expect("a place was given back");
        assert_eq!(l.open(), 5);
    }

    #[test]
    fn node_limit_and_bounded_tracking() {
        let l = ConnLimits::new("rtmp", 0, 3);
        let permits: Vec<_> = (1..=3)
            .map(|i| l.try_acquire(ip(&format!("10.0.0.{i}"))).expect("room"))
            .collect();
        assert_eq!(l.try_acquire(ip("10.0.0.9")).err(), Some(Refusal::Node));
        assert_eq!(
            l.tracked_addresses(),
            0,
            "no per-address limit: nothing kept"
        );
        drop(permits);
        assert_eq!(l.open(), 0);

        // Many addresses: entries only for open connections, never above the node limit.
        let l = ConnLimits::new("http", 1, 1000);
        let mut held = Vec::new();
        for i in 0..5000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            match l.try_acquire(a) {
                Ok(p) => held.push(p),
                Err(e) => assert_eq!(e, Refusal::Node),
            }
            assert!(l.tracked_addresses() <= 1000);
        }
        assert_eq!(held.len(), 1000);
        held.truncate(10);
        assert_eq!(l.tracked_addresses(), 10);
        drop(held);
        assert_eq!((l.open(), l.tracked_addresses()), (0, 0));
    }

    #[test]
    fn log_lines_are_rate_limited() {
        let l = LogLimiter::new(Duration::from_secs(3600));
        assert_eq!(l.allow(), Some(0));
        assert_eq!((0..5).filter_map(|_| l.allow()).count(), 0);
        let l = LogLimiter::new(Duration::ZERO);
        assert_eq!(l.allow(), Some(0));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(l.allow(), Some(0));
    }

    #[test]
    fn shared_across_threads() {
        let l = ConnLimits::new("http", 50, 10_000);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter_map(|_| l.try_acquire(ip("10.1.1.1")).ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Every permit stays alive until all threads are done.
        let held: Vec<Vec<ConnPermit>> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        assert_eq!(held.iter().map(Vec::len).sum::<usize>(), 50);
        drop(held);
        assert_eq!(l.open(), 0);
    }
}
