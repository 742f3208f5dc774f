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
    /// The announced `EXT-X-TARGETDURATION` (rounded up to whole seconds), fixed for the
    /// whole broadcast as RFC 8216 requires. A segment that reaches it without a key frame
    /// is cut anyway before its `EXTINF` would round above it (such a segment does not
    /// start with a key frame), so it also bounds memory for streams with long or no
    /// GOPs. Default 4 s; at least `segment_target` rounded up to whole seconds, and at
    /// least 1 s.
    pub target_duration: Duration,
    /// How much audio may arrive after the last video frame before the video track
    /// counts as stalled (camera lost, app backgrounded): the open part and segment are
    /// then closed and packaging continues audio-only (cut by audio time) until a video
    /// key frame comes back. Counted in audio sample durations in arrival order, so
    /// tracks whose timestamps are offset do not look stalled. Default 1 s; at least
    /// `part_target`.
    pub video_stall: Duration,
    /// Completed segments kept in the playlist (and in memory). Default 12; at least 1.
    pub window: usize,
    /// Completed segments (counted from the live edge) whose parts stay listed, besides
    /// the segment in progress. Default 4.
    pub keep_parts_segments: usize,
    /// The variant URI the multivariant playlist names, relative to it. Default
    /// `media.m3u8`; a server that puts each broadcast in its own directory sets
    /// `<directory>/media.m3u8`.
    pub media_playlist_uri: String,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            target_duration: Duration::from_secs(4),
            video_stall: Duration::from_secs(1),
            window: 12,
            keep_parts_segments: 4,
            media_playlist_uri: crate::names::MEDIA_PLAYLIST.to_owned(),
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

    /// `EXT-X-TARGETDURATION` in whole seconds: [`HlsConfig::target_duration`] rounded up
    /// (of a clamped configuration, as [`crate::LiveStream::config`] returns).
    pub fn target_duration_secs(&self) -> u64 {
        ceil_secs(self.target_duration).max(1)
    }

    /// The longest segment: the longest `EXTINF` that still rounds (to the nearest
    /// millisecond as written, then to the nearest second) to the target duration.
    pub fn max_segment(&self) -> Duration {
        Duration::from_secs(self.target_duration_secs()) + Duration::from_millis(499)
    }

    /// The configuration with every value brought into its usable range.
    pub(crate) fn clamped(mut self) -> Self {
        self.part_target = self.part_target.max(Duration::from_millis(10));
        self.segment_target = self.segment_target.max(self.part_target);
        let floor = Duration::from_secs(ceil_secs(self.segment_target).max(1));
        self.target_duration = self.target_duration.max(floor);
        self.video_stall = self.video_stall.max(self.part_target);
        self.window = self.window.max(1);
        self
    }
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_duration_is_clamped_and_rounded_up() {
        let c = HlsConfig {
            segment_target: Duration::from_millis(2500),
            target_duration: Duration::from_secs(1),
            ..HlsConfig::default()
        }
        .clamped();
        assert_eq!(c.target_duration, Duration::from_secs(3));
        assert_eq!(c.target_duration_secs(), 3);
        let c = HlsConfig {
            target_duration: Duration::from_millis(4200),
            ..HlsConfig::default()
        }
        .clamped();
        assert_eq!(c.target_duration_secs(), 5);
        assert_eq!(c.max_segment(), Duration::from_millis(5499));
        let c = HlsConfig {
            part_target: Duration::ZERO,
            segment_target: Duration::ZERO,
            target_duration: Duration::ZERO,
            video_stall: Duration::ZERO,
            ..HlsConfig::default()
        }
        .clamped();
        assert_eq!(c.target_duration, Duration::from_secs(1));
        assert_eq!(c.video_stall, Duration::from_millis(10));
    }
}
