//! The per-publisher bitrate cap (`[node] max_publish_kbps`), enforced at ingest for
//! every protocol: the registry's janitor reads how many frame bytes each broadcast's
//! publisher delivered to the bus and averages them over [`WINDOW`], so key-frame bursts
//! do not count against it. A publisher over the cap for a whole window is cut (its
//! connection closed, like a takeover), with a log line and
//! `weir_publish_cut_total{reason="bitrate"}`; its broadcast ends after the reconnect grace
//! unless it comes back.

use std::time::{Duration, Instant};

/// Averaging window of the cap.
pub const WINDOW: Duration = Duration::from_secs(5);

/// Average bitrate of one publisher over consecutive windows.
#[derive(Debug, Clone, Copy)]
pub struct BitrateMeter {
    start: Instant,
    bytes_at_start: u64,
}

impl BitrateMeter {
    /// A meter whose first window starts now, at the broadcast's byte count `bytes`.
    pub fn new(now: Instant, bytes: u64) -> Self {
        Self {
            start: now,
            bytes_at_start: bytes,
        }
    }

    /// Reads the byte count; when a window is complete, returns its average in bits per
    /// second and starts the next one.
    pub fn sample(&mut self, now: Instant, bytes: u64) -> Option<u64> {
        let elapsed = now.checked_duration_since(self.start)?;
        if elapsed < WINDOW {
            return None;
        }
        let bits = bytes.saturating_sub(self.bytes_at_start).saturating_mul(8);
        let bps = (u128::from(bits) * 1000 / elapsed.as_millis().max(1)) as u64;
        *self = Self::new(now, bytes);
        Some(bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_whole_windows_only() {
        let t = Instant::now();
        let mut m = BitrateMeter::new(t, 1000);
        // A 1 MB key-frame burst inside the window is not judged on its own.
        assert_eq!(m.sample(t + Duration::from_secs(1), 1_001_000), None);
        // 5 s, 1.25 MB: 2 Mbit/s.
        assert_eq!(m.sample(t + WINDOW, 1_251_000), Some(2_000_000));
        // The next window starts where that one ended.
        assert_eq!(m.sample(t + WINDOW * 2, 1_251_000), Some(0));
    }
}
