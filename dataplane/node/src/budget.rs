//! The node-wide memory budget: media and connection buffers.
//!
//! Charged to it:
//! - media: every stream's packaged LL-HLS window (and its renditions') and its bus
//!   buffers (GOP cache, subscriber queues), summed by the registry's janitor every
//!   250 ms;
//! - connections: what each connection holds in user space, kept by the connection
//!   itself in a [`ConnCharge`] (one relaxed atomic add when its buffers change size,
//!   released when it ends): HTTP read buffer and request bytes (a POST body up to its
//!   `Content-Length`), RTMP read buffer and the chunk reassembly of its session, a
//!   bound of each SRT caller's receive buffer, an estimate of each WebRTC session's
//!   state plus the datagrams queued for it. Each connection's figure and how it was
//!   chosen is documented where it is charged. Kernel socket buffers are not charged.
//!
//! The janitor records the sum (`weir_memory_budget_used_bytes`, the connections' share
//! in `weir_memory_budget_connection_bytes`); [`MemoryBudget::admit`] adds the current
//! connection total to the last media count, so connections opened since are seen at
//! once. When the sum reaches the budget the node first sheds ended broadcasts, oldest
//! first (kept only so late players see EXT-X-ENDLIST), then refuses new publishers
//! with a clear reason; live broadcasts and open connections are never cut for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::hooks::PublishRefusal;

/// Metric: publishers refused, by `reason` (`memory_budget`).
pub const PUBLISH_REFUSED: &str = "weir_publish_refused_total";

/// Metric: bytes charged to the budget by open connections.
pub const CONNECTION_BYTES: &str = "weir_memory_budget_connection_bytes";

/// The budget and what is charged to it now.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// Media bytes at the janitor's last count.
    media: AtomicUsize,
    /// Bytes charged by open connections now (the sum of their [`ConnCharge`]s).
    connections: Arc<AtomicUsize>,
    /// Milliseconds since `epoch` of the last refusal log line (one every 10 s at most).
    last_log_ms: AtomicU64,
    epoch: Instant,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            media: AtomicUsize::new(0),
            connections: Arc::new(AtomicUsize::new(0)),
            last_log_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// `[node] memory_budget_mb`: that many MiB, or with 0 half of the machine's memory.
    pub fn from_mb(mb: u64) -> Self {
        let bytes = if mb == 0 {
            physical_memory().map_or(4 << 30, |m| m / 2)
        } else {
            mb.saturating_mul(1 << 20)
        };
        Self::new(usize::try_from(bytes).unwrap_or(usize::MAX))
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged: media at the last count plus the connections' charges now.
    pub fn used(&self) -> usize {
        self.media
            .load(Ordering::Relaxed)
            .saturating_add(self.connection_bytes())
    }

    /// Bytes charged by open connections now.
    pub fn connection_bytes(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// A charge of `bytes` for one connection, held for its life (see [`ConnCharge`]).
    pub fn charge(&self, bytes: usize) -> ConnCharge {
        self.connections.fetch_add(bytes, Ordering::Relaxed);
        ConnCharge {
            total: self.connections.clone(),
            bytes,
        }
    }

    /// Records the janitor's count of media bytes; the gauges show it with the
    /// connections' charges.
    pub fn record(&self, media: usize) {
        self.media.store(media, Ordering::Relaxed);
        let connections = self.connection_bytes();
        metrics::gauge!("weir_memory_budget_used_bytes")
            .set(media.saturating_add(connections) as f64);
        metrics::gauge!(CONNECTION_BYTES).set(connections as f64);
        metrics::gauge!("weir_memory_budget_bytes").set(self.limit as f64);
    }

    /// Whether a new publisher may start: refused while the budget is reached.
    pub fn admit(&self, channel: &str) -> Result<(), PublishRefusal> {
        let used = self.used();
        if used < self.limit {
            return Ok(());
        }
        metrics::counter!(PUBLISH_REFUSED, "reason" => "memory_budget").increment(1);
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if (now.saturating_sub(last) >= 10_000 || last == 0)
            && self
                .last_log_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %channel,
                used_mib = used >> 20,
                budget_mib = self.limit >> 20,
                "node memory budget reached: new publishers are refused"
            );
        }
        Err(PublishRefusal {
            code: "NetStream.Publish.Failed",
            reason: format!(
                "this node is at its memory budget ({} of {} MiB): publish to another node or retry later",
                used >> 20,
                self.limit >> 20
            ),
        })
    }
}

/// One connection's share of the budget: what its buffers hold now. Charged when made
/// ([`MemoryBudget::charge`]), adjusted with [`ConnCharge::set`] when the buffers grow
/// or shrink, released when dropped.
#[derive(Debug)]
pub struct ConnCharge {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl ConnCharge {
    /// Charges `bytes` instead of what was charged so far: one relaxed atomic add, none
    /// when the figure did not change.
    pub fn set(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.total.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else if bytes < self.bytes {
            self.total.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }
}

impl Drop for ConnCharge {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Of the ended broadcasts `(ended at, bytes, id)`, the ones to drop, oldest first, to
/// bring `used` to the budget `limit` (none when it is not over).
pub fn shed<T>(used: usize, limit: usize, mut ended: Vec<(Instant, usize, T)>) -> Vec<T> {
    if used <= limit {
        return Vec::new();
    }
    ended.sort_by_key(|(at, _, _)| *at);
    let mut over = used - limit;
    let mut out = Vec::new();
    for (_, bytes, id) in ended {
        if over == 0 {
            break;
        }
        over = over.saturating_sub(bytes);
        out.push(id);
    }
    out
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn publishers_are_refused_at_the_budget_with_a_reason() {
        let b = MemoryBudget::new(10 << 20);
        b.record(9 << 20);
        assert!(b.admit("a").is_ok());
        b.record(10 << 20);
        let e = b.admit("a").expect_err("at the budget");
        assert!(e.reason.contains("10 of 10 MiB"), "{}", e.reason);
        b.record(1 << 20);
        assert!(b.admit("a").is_ok());
    }

    #[test]
    fn the_oldest_ended_broadcasts_go_first_and_only_as_many_as_needed() {
        let t = Instant::now();
        let ended = vec![
            (t + Duration::from_secs(3), 40, "newest"),
            (t, 30, "oldest"),
            (t + Duration::from_secs(1), 30, "middle"),
        ];
        assert!(shed(100, 100, ended.clone()).is_empty());
        assert_eq!(shed(120, 100, ended.clone()), ["oldest"]);
        assert_eq!(shed(131, 100, ended.clone()), ["oldest", "middle"]);
        // Not enough ended media to get under: all of it goes, live streams stay.
        assert_eq!(shed(1000, 100, ended), ["oldest", "middle", "newest"]);
    }

    #[test]
    fn connection_charges_grow_shrink_and_are_released_on_drop() {
        let b = MemoryBudget::new(10 << 20);
        let mut c = b.charge(4096);
        let d = b.charge(1000);
        assert_eq!(b.connection_bytes(), 5096);
        c.set(70_000);
        assert_eq!(b.connection_bytes(), 71_000);
        c.set(70_000);
        assert_eq!(b.connection_bytes(), 71_000);
        c.set(2048);
        assert_eq!(b.connection_bytes(), 3048);
        b.record(1 << 20);
        assert_eq!(b.used(), (1 << 20) + 3048);
        drop(c);
        assert_eq!(b.connection_bytes(), 1000);
        drop(d);
        assert_eq!((b.connection_bytes(), b.used()), (0, 1 << 20));
    }

    #[test]
    fn connections_alone_reaching_the_budget_refuse_publishers() {
        let b = MemoryBudget::new(1 << 20);
        b.record(0);
        let mut conns: Vec<ConnCharge> = (0..15).map(|_| b.charge(64 << 10)).collect();
        assert!(b.admit("a").is_ok(), "15 × 64 KiB is under 1 MiB");
        // Seen at once, without waiting for the janitor's next count.
        conns.push(b.charge(64 << 10));
        let e = b.admit("a").expect_err("at the budget");
        assert!(e.reason.contains("1 of 1 MiB"), "{}", e.reason);
        conns.pop();
        assert!(b.admit("a").is_ok());
        conns[0].set(128 << 10);
        assert!(b.admit("a").is_err());
        conns.clear();
        assert_eq!(b.used(), 0);
        assert!(b.admit("a").is_ok());
    }

    #[test]
    fn zero_means_half_the_machine() {
        let b = MemoryBudget::from_mb(0);
        assert!(b.limit() >= 64 << 20, "{}", b.limit());
        assert_eq!(MemoryBudget::from_mb(3).limit(), 3 << 20);
    }
}
