//! The node-wide memory budget for media.
//!
//! Charged to it: every stream's packaged LL-HLS window (and its renditions') and its bus
//! buffers (GOP cache, subscriber queues), summed by the registry's janitor every 250 ms.
//! Connection buffers are not charged: each is bounded by the connection limits and cut
//! by the write deadline. When the sum reaches the budget the node first sheds ended
//! broadcasts, oldest first (kept only so late players see EXT-X-ENDLIST), then refuses
//! new publishers with a clear reason; live broadcasts are never cut for it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::hooks::PublishRefusal;

/// Metric: publishers refused, by `reason` (`memory_budget`).
pub const PUBLISH_REFUSED: &str = "weir_publish_refused_total";

/// The budget and what is charged to it now.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// Milliseconds since `epoch` of the last refusal log line (one every 10 s at most).
    last_log_ms: AtomicU64,
    epoch: Instant,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
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

    /// Bytes charged at the last count.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Records the janitor's count.
    pub fn record(&self, used: usize) {
        self.used.store(used, Ordering::Relaxed);
        metrics::gauge!("weir_memory_budget_used_bytes").set(used as f64);
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
    fn zero_means_half_the_machine() {
        let b = MemoryBudget::from_mb(0);
        assert!(b.limit() >= 64 << 20, "{}", b.limit());
        assert_eq!(MemoryBudget::from_mb(3).limit(), 3 << 20);
    }
}
