//! Packaging settings.

use std::time::Duration;

/// How a [`crate::LiveStream`] cuts parts and segments and how much it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Target duration of a partial segment (`PART-TARGET`); every part is at most this
    /// long unless a single frame is longer. Default 200 ms; at least 10 ms is used.
    pub part_target: Duration,
    /// Target duration of a segment; segments are cut at the first video key frame once
    /// they are this long (within half a frame). Default 2 s; at least `part_target`.
    pub segment_target: Duration,
    /// Completed segments kept in the playlist (and in memory). Default 12; at least 1.
    pub window: usize,
    /// Completed segments (counted from the live edge) whose parts stay listed, besides
    /// the segment in progress. Default 4.
    pub keep_parts_segments: usize,
    /// A segment is cut even without a key frame once it is this long, so a stream that
    /// never sends key frames cannot hold unbounded memory (such a segment does not start
    /// with a key frame and players may glitch there). Default 12 s; at least
    /// `segment_target`.
    pub max_segment: Duration,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            window: 12,
            keep_parts_segments: 4,
            max_segment: Duration::from_secs(12),
        }
    }
}

impl HlsConfig {
    /// The configuration with every value brought into its usable range.
    pub(crate) fn clamped(mut self) -> Self {
        self.part_target = self.part_target.max(Duration::from_millis(10));
        self.segment_target = self.segment_target.max(self.part_target);
        self.max_segment = self.max_segment.max(self.segment_target);
        self.window = self.window.max(1);
        self
    }
}
