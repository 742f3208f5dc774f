//! Timestamp normalisation, done once per broadcast at ingest.
//!
//! Ingest protocols hand us wrapping, jumping, sometimes backwards clocks (RTMP: a
//! 32-bit millisecond clock shared by audio and video, plus a signed 24-bit
//! composition offset). Everything downstream relies on these rules instead:
//!
//! 1. **One timeline per broadcast**, in [`TIMESCALE`](crate::TIMESCALE) ticks, whose first
//!    frame sits at [`TIMELINE_START_MS`] so that interleaved frames slightly older than the
//!    first one, and negative composition offsets, never produce negative times.
//! 2. **Rollover**: the raw clock is unwrapped by taking the signed 32-bit difference
//!    to the previous raw value, so 0xFFFF_FFF0 → 0x10 is a step of +32 ms.
//! 3. **Small steps backwards** (up to [`MAX_BACKWARD_MS`]) are normal audio/video
//!    interleaving and are applied as they are.
//! 4. **Jumps** (a step more than [`MAX_FORWARD_MS`] forwards or [`MAX_BACKWARD_MS`]
//!    backwards: an encoder restart, a clock reset) are absorbed: the timeline continues
//!    where it was and the frame is flagged `discontinuity`.
//! 5. **Decode times are strictly increasing per track**: a frame whose dts would not
//!    advance is moved one tick after its predecessor.
//! 6. **Composition offsets** (pts − dts) are carried as they come, including negative ones
//!    (CMAF writes signed offsets in `trun` version 1).

use crate::TrackKind;

/// Steps backwards up to this many milliseconds are interleaving, not a jump.
pub const MAX_BACKWARD_MS: i64 = 1_000;
/// Steps forwards beyond this many milliseconds are a jump.
pub const MAX_FORWARD_MS: i64 = 10_000;
/// Where the first frame of a broadcast sits on the timeline.
pub const TIMELINE_START_MS: i64 = MAX_BACKWARD_MS;

const TICKS_PER_MS: i64 = 90;

/// A normalised decode/presentation time pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizedTime {
    /// Decode time in bus ticks.
    pub dts: i64,
    /// Presentation time in bus ticks.
    pub pts: i64,
    /// True when the raw clock jumped and the timeline was re-based at this frame.
    pub discontinuity: bool,
}

/// Turns raw ingest clocks into the bus timeline (see the module docs for the rules).
#[derive(Debug, Clone)]
pub struct TimestampNormalizer {
    last_raw: Option<u32>,
    timeline_ms: i64,
    last_dts: [Option<i64>; 2],
}

impl TimestampNormalizer {
    /// A normaliser whose timeline starts at [`TIMELINE_START_MS`] with the first frame.
    pub fn new() -> Self {
        Self {
            last_raw: None,
            timeline_ms: TIMELINE_START_MS,
            last_dts: [None; 2],
        }
    }

    /// Normalises a frame stamped with a 32-bit millisecond decode clock and a
    /// millisecond composition offset (RTMP/FLV).
    pub fn normalize_ms(&mut self, track: TrackKind, dts_ms: u32, cts_ms: i32) -> NormalizedTime {
        let mut discontinuity = false;
        if let Some(last) = self.last_raw {
            let step = i64::from(dts_ms.wrapping_sub(last) as i32);
            if (-MAX_BACKWARD_MS..=MAX_FORWARD_MS).contains(&step) {
                self.timeline_ms += step;
            } else {
                discontinuity = true;
            }
        }
        self.last_raw = Some(dts_ms);

        let slot = &mut self.last_dts[track as usize];
        let mut dts = self.timeline_ms.max(0) * TICKS_PER_MS;
        if let Some(prev) = *slot
            && dts <= prev
        {
            dts = prev + 1;
        }
        *slot = Some(dts);
        NormalizedTime {
            dts,
            pts: dts + i64::from(cts_ms) * TICKS_PER_MS,
            discontinuity,
        }
    }
}

impl Default for TimestampNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrackKind::{Audio, Video};

    /// (dts, pts) in ms relative to the timeline start, and the discontinuity flag.
    fn ms(n: &mut TimestampNormalizer, t: TrackKind, dts: u32, cts: i32) -> (i64, i64, bool) {
        let r = n.normalize_ms(t, dts, cts);
        let base = TIMELINE_START_MS * TICKS_PER_MS;
        ((r.dts - base) / 90, (r.pts - base) / 90, r.discontinuity)
    }

    #[test]
    fn starts_at_the_timeline_start_and_follows_the_clock() {
        let mut n = TimestampNormalizer::new();
        assert_eq!(ms(&mut n, Video, 5000, 66), (0, 66, false));
        assert_eq!(ms(&mut n, Audio, 5010, 0), (10, 10, false));
        assert_eq!(ms(&mut n, Video, 5033, 0), (33, 33, false));
    }

    #[test]
    fn unwraps_32_bit_rollover() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, Video, u32::MAX - 15, 0);
        assert_eq!(ms(&mut n, Video, 17, 0), (33, 33, false));
    }

    #[test]
    fn interleaving_backwards_is_kept() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, Video, 1000, 0);
        assert_eq!(ms(&mut n, Audio, 900, 0), (-100, -100, false));
        assert_eq!(ms(&mut n, Audio, 923, 0), (-77, -77, false));
        assert_eq!(ms(&mut n, Video, 1033, 0), (33, 33, false));
    }

    #[test]
    fn jumps_are_absorbed_and_flagged() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, Video, 100_000, 0);
        ms(&mut n, Video, 100_033, 0);
        // The encoder restarted its clock: the timeline continues, one tick later.
        let t = n.normalize_ms(Video, 0, 0);
        assert!(t.discontinuity);
        assert_eq!(t.dts, (TIMELINE_START_MS + 33) * TICKS_PER_MS + 1);
        assert_eq!(ms(&mut n, Video, 33, 0), (66, 66, false));
        // A forward jump of an hour.
        let (dts, _, disc) = ms(&mut n, Video, 3_600_033, 0);
        assert!(disc);
        assert!(dts < 100);
    }

    #[test]
    fn negative_composition_offsets_are_carried() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, Video, 1000, 0);
        let t = n.normalize_ms(Video, 1033, -33);
        assert_eq!(t.pts - t.dts, -33 * 90);
        assert!(t.pts > 0);
    }

    #[test]
    fn dts_strictly_increases_per_track() {
        let mut n = TimestampNormalizer::new();
        let a = n.normalize_ms(Video, 0, 0);
        let b = n.normalize_ms(Video, 0, 0);
        assert!(b.dts > a.dts);
    }
}
