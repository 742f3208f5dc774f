//! Packaging settings.

use std::time::Duration;

/// How a [`crate::LiveStream`] cuts parts and segments and how much it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Nominal duration of a partial segment. Parts are cut at the last frame that keeps
    /// them within [`HlsConfig::advertised_part_target`] (this plus 5 %), which is what the
    /// playlist announces as `PART-TARGET`. Default 200 ms; at least 10 ms is used.
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
    /// `PART-TARGET` as announced: the nominal part target plus 5 % headroom. Encoders
    /// stamp frames in whole milliseconds (29.97 fps gives 33/34 ms), so six frames of a
    /// nominal 200 ms part may add up to 201 ms; without headroom such parts would be cut
    /// a frame early (167 ms), under the 85 % of PART-TARGET that RFC 8216bis requires of
    /// parts that are neither independent nor last in their segment.
    pub fn advertised_part_target(&self) -> Duration {
        self.part_target + self.part_target / 20
    }

    /// The configuration with every value brought into its usable range.
    pub(crate) fn clamped(mut self) -> Self {
        self.part_target = self.part_target.max(Duration::from_millis(10));
        self.segment_target = self.segment_target.max(self.part_target);
        self.max_segment = self.max_segment.max(self.segment_target);
        self.window = self.window.max(1);
        self
    }
}
