//! Carrying bus timestamps through GStreamer and back, exactly.
//!
//! - [`TimeOrigin`]: 90 kHz ticks ↔ GStreamer nanoseconds. Bus ticks are shifted so the
//!   first keyframe's DTS lands at [`ORIGIN_MARGIN`] (GStreamer times are unsigned, and
//!   encoders treat early times specially) and rounded to the nearest nanosecond; rounding
//!   back is exact because a tick is 11 111.1 ns.
//! - [`SourceTimeline`]: decode timestamps for encoded frames. A rung encoded without
//!   B-frames emits frames in presentation order; the k-th smallest PTS of the source gets
//!   the k-th DTS of the source. That DTS is never after the PTS (the k frames presented
//!   first have k DTS values, all at or before it), increases strictly, and is the same on
//!   every rung, so renditions share one decode timeline with the source.
//! - [`FrameDecimator`]: a rung's frame-rate cap, by dropping frames (never restamping).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use weir_media::TIMESCALE;

/// Where the first keyframe's DTS lands on the GStreamer clock, in ticks: 1000 h + 10 s.
///
/// GStreamer video encoders shift a stream whose PTS start below their `min-pts` (x264enc
/// asks for 1000 h, to keep B-frame DTS positive) and then compare force-key-unit running
/// times against the shifted times, ignoring every request after the first. Starting past
/// 1000 h avoids the shift; the extra 10 s leave room for negative composition offsets.
pub const ORIGIN_MARGIN: i64 = (1000 * 3600 + 10) * TIMESCALE as i64;

const NS_PER_S: i128 = 1_000_000_000;

/// Maps bus ticks to GStreamer nanoseconds and back for one ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOrigin {
    /// Bus tick that maps to GStreamer time 0.
    zero: i64,
}

impl TimeOrigin {
    /// An origin that puts `first_dts` at [`ORIGIN_MARGIN`].
    pub fn new(first_dts: i64) -> Self {
        Self {
            zero: first_dts.saturating_sub(ORIGIN_MARGIN),
        }
    }

    /// The bus DTS the origin was made from (the first frame taken).
    pub fn first_dts(self) -> i64 {
        self.zero.saturating_add(ORIGIN_MARGIN)
    }

    /// GStreamer time of bus tick `t`; `None` before the origin or past `u64` nanoseconds.
    pub fn to_ns(self, t: i64) -> Option<u64> {
        let rel = i128::from(t.checked_sub(self.zero)?);
        if rel < 0 {
            return None;
        }
        let ns = (rel * NS_PER_S + i128::from(TIMESCALE / 2)) / i128::from(TIMESCALE);
        u64::try_from(ns).ok()
    }

    /// Bus tick of GStreamer time `ns`, rounded to the nearest tick.
    pub fn to_ticks(self, ns: u64) -> i64 {
        let rel = (i128::from(ns) * i128::from(TIMESCALE) + NS_PER_S / 2) / NS_PER_S;
        i64::try_from(rel)
            .unwrap_or(i64::MAX)
            .saturating_add(self.zero)
    }
}

/// How long paired timestamps are kept for rungs that lag: 60 s of media.
const HORIZON: i64 = 60 * TIMESCALE as i64;
/// Bound on timestamps waiting to be paired (a source whose PTS never advance).
const MAX_UNPAIRED: usize = 4096;

/// The source's (PTS, DTS) pairs, re-paired in rank order (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct SourceTimeline {
    unpaired_pts: BTreeSet<i64>,
    unpaired_dts: VecDeque<i64>,
    paired: BTreeMap<i64, i64>,
    newest_pts: Option<i64>,
}

impl SourceTimeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a source frame, in decode order. A repeated PTS is ignored.
    pub fn push(&mut self, pts: i64, dts: i64) {
        if self.paired.contains_key(&pts) || !self.unpaired_pts.insert(pts) {
            return;
        }
        self.unpaired_dts.push_back(dts);
        self.newest_pts = Some(self.newest_pts.map_or(pts, |n| n.max(pts)));
        if self.unpaired_pts.len() > MAX_UNPAIRED {
            self.pair_through(i64::MAX);
        }
        if let Some(newest) = self.newest_pts {
            let keep_from = newest.saturating_sub(HORIZON);
            while self
                .paired
                .first_key_value()
                .is_some_and(|(&p, _)| p < keep_from)
            {
                self.paired.pop_first();
            }
        }
    }

    /// The DTS for the output frame presented at `pts`. Every source frame presented
    /// before `pts` must have been pushed (a decoder outputs in presentation order, so it
    /// has); `None` for a PTS the source never had.
    pub fn dts_for(&mut self, pts: i64) -> Option<i64> {
        self.pair_through(pts);
        self.paired.get(&pts).copied()
    }

    fn pair_through(&mut self, pts: i64) {
        while let Some(&first) = self.unpaired_pts.first() {
            if first > pts {
                break;
            }
            self.unpaired_pts.pop_first();
            if let Some(dts) = self.unpaired_dts.pop_front() {
                self.paired.insert(first, dts);
            }
        }
    }
}

/// Caps a rung's frame rate by dropping frames: the first frame of each 1/`max_fps`
/// interval is kept, and every keyframe is kept (keyframe positions stay
/// identical on every rung).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecimator {
    max_fps: u64,
    last_bucket: Option<u64>,
}

impl FrameDecimator {
    /// A decimator for `max_fps` frames per second (at least 1).
    pub fn new(max_fps: u32) -> Self {
        Self {
            max_fps: u64::from(max_fps.max(1)),
            last_bucket: None,
        }
    }

    /// Whether to keep the frame presented at `pts_ns`.
    pub fn keep(&mut self, pts_ns: u64, keyframe: bool) -> bool {
        // Intervals start a quarter interval early, so a source at an exact multiple of the
        // cap (60 → 30) keeps every other frame despite nanosecond rounding and jitter.
        let scaled = u128::from(pts_ns) * u128::from(self.max_fps) + 250_000_000;
        let bucket = u64::try_from(scaled / 1_000_000_000).unwrap_or(u64::MAX);
        let new_bucket = self.last_bucket.is_none_or(|b| bucket > b);
        if keyframe || new_bucket {
            self.last_bucket = Some(bucket);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_trip_exactly() {
        let o = TimeOrigin::new(123_456_789);
        for t in (123_456_789 - ORIGIN_MARGIN..123_456_789 - ORIGIN_MARGIN + 3 * TIMESCALE as i64)
            .chain(123_456_789..123_456_789 + 3 * TIMESCALE as i64)
            .step_by(7)
        {
            let ns = o.to_ns(t).expect("after the origin");
            assert_eq!(o.to_ticks(ns), t);
        }
        assert_eq!(o.to_ns(123_456_789), Some(3_600_010_000_000_000));
        assert_eq!(o.to_ns(123_456_789 - ORIGIN_MARGIN - 1), None);
        // 30 fps frame n at 3000 ticks: GStreamer's own floor(n * 1e9 / 30) rounds back.
        let o = TimeOrigin { zero: 0 };
        for n in 0..10_000u64 {
            assert_eq!(o.to_ticks(n * 1_000_000_000 / 30), (n * 3000) as i64);
        }
    }

    #[test]
    fn rank_pairing_without_reordering_is_the_identity() {
        let mut tl = SourceTimeline::new();
        for n in 0..10 {
            tl.push(n * 3000, n * 3000);
        }
        for n in 0..10 {
            assert_eq!(tl.dts_for(n * 3000), Some(n * 3000));
        }
        assert_eq!(tl.dts_for(1), None);
    }

    #[test]
    fn rank_pairing_with_b_frames_keeps_dts_before_pts_and_increasing() {
        // Decode order I P B B P B B with 2-frame reorder delay (dts = pts - 2 frames).
        let f = 3000;
        let order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8];
        let mut tl = SourceTimeline::new();
        for (i, &p) in order.iter().enumerate() {
            tl.push(p * f + 2 * f, i as i64 * f);
        }
        let mut last = i64::MIN;
        for p in 0..10 {
            let pts = p * f + 2 * f;
            let dts = tl.dts_for(pts).expect("known pts");
            assert!(dts <= pts && dts > last, "pts {pts} dts {dts}");
            assert_eq!(dts, p * f);
            last = dts;
        }
    }

    #[test]
    fn dropped_frames_keep_their_slot() {
        let mut tl = SourceTimeline::new();
        for n in 0..6 {
            tl.push(n * 3000 + 6000, n * 3000);
        }
        // A rung that skipped frames 1 and 2 gets the same DTS as one that did not.
        assert_eq!(tl.dts_for(6000), Some(0));
        assert_eq!(tl.dts_for(6000 + 3 * 3000), Some(3 * 3000));
        assert_eq!(tl.dts_for(6000 + 3000), Some(3000));
        tl.push(6000 + 3000, 99); // repeated pts: ignored
        assert_eq!(tl.dts_for(6000 + 6 * 3000), None);
    }

    #[test]
    fn old_pairs_are_forgotten() {
        let mut tl = SourceTimeline::new();
        for n in 0..(70 * 30) {
            tl.push(n * 3000, n * 3000);
            let _ = tl.dts_for(n * 3000);
        }
        assert_eq!(tl.dts_for(0), None);
        assert!(tl.paired.len() <= 60 * 30 + 1);
    }

    #[test]
    fn decimator_halves_60_to_30_and_keeps_keyframes() {
        let frame = |n: u64| n * 1_000_000_000 / 60;
        let mut d = FrameDecimator::new(30);
        let kept: Vec<u64> = (0..12).filter(|&n| d.keep(frame(n), n == 5)).collect();
        assert_eq!(kept, [0, 2, 4, 5, 6, 8, 10]);
        // 50 fps capped at 30 keeps about 30 a second.
        let mut d = FrameDecimator::new(30);
        let kept = (0..500u64)
            .filter(|&n| d.keep(n * 20_000_000, false))
            .count();
        assert_eq!(kept, 300);
        // A source under the cap is untouched.
        let mut d = FrameDecimator::new(30);
        assert!((0..100u64).all(|n| d.keep(n * 1_000_000_000 / 25, false)));
    }
}
