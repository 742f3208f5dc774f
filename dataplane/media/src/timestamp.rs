//! Timestamp normalisation, done once per broadcast at ingest.
//!
//! Ingest protocols hand us wrapping, jumping, sometimes backwards clocks, and encoders
//! interleave tracks loosely: audio may be sent a second or more behind the video it
//! belongs to. Two kinds of raw clock come in:
//!
//! - [`TimestampNormalizer::normalize_ms`]: RTMP/FLV, a 32-bit millisecond decode clock
//!   per message plus a signed composition offset in milliseconds. It wraps at 2^32 ms.
//! - [`TimestampNormalizer::normalize_90k`]: MPEG-TS (and RTP-like 90 kHz clocks), a
//!   33-bit decode clock in 90 kHz ticks plus a signed composition offset in ticks. It
//!   wraps at 2^33 ticks (about 26.5 hours) and keeps tick precision (an AAC frame at
//!   48 kHz is exactly 1920 ticks).
//!
//! Internally both are raw tick counts with a wrap modulus (milliseconds become
//! `ms × 90` ticks with a modulus of `2^32 × 90`), so the rules below are the same for
//! both; the limits are stated in milliseconds and apply in ticks (`× 90`). Everything
//! downstream relies on these rules instead of the raw clocks:
//!
//! 1. **One timeline per broadcast**, in [`TIMESCALE`](crate::TIMESCALE) ticks. The first
//!    frame of the broadcast sits at [`TIMELINE_START_MS`], so that tracks stamped up to
//!    that much earlier than the first frame, and negative composition offsets, never
//!    produce negative times. Raw clocks map onto the timeline through one broadcast-wide
//!    *epoch* (raw value ↔ timeline position), so tracks stay in sync: audio stamped
//!    1.5 s behind video lands 1.5 s earlier on the timeline. (A track on the other kind
//!    of clock than the epoch's cannot map through it: it is an unrelated clock, rule 2.)
//! 2. **Each track has its own clock.** A track's first frame maps through the current
//!    epoch. If that lands more than [`TIMELINE_START_MS`] before, or more than
//!    [`MAX_FORWARD_MS`] after, the newest timeline position of any track, the track runs
//!    on an unrelated clock: it starts at that newest position instead and the frame is
//!    flagged `discontinuity`. Up to [`MAX_TRACKS`] tracks get their own clock; further
//!    tracks share one fallback clock (never a panic, never unbounded state).
//! 3. **Rollover**: a track's raw clock is unwrapped by taking the signed difference,
//!    modulo the clock's wrap, to *that track's* previous raw value, so 0xFFFF_FFF0 →
//!    0x10 ms is a step of +32 ms, and 2^33 − 900 → 900 ticks a step of +1800 ticks.
//!    Steps from −[`MAX_BACKWARD_MS`] to +[`MAX_FORWARD_MS`] are applied as they are
//!    (small steps back tolerate sloppy encoders; rule 6 keeps dts increasing).
//! 4. **Jumps** (a step of a track more than [`MAX_FORWARD_MS`] forwards or
//!    [`MAX_BACKWARD_MS`] backwards: an encoder restart, a clock reset; or a track
//!    switching to the other kind of clock) are absorbed per track. If another track's
//!    jump re-based the epoch recently (within [`MAX_FORWARD_MS`] of this track's
//!    position) and this raw value mapped through that epoch lands within a normal step
//!    (rule 3) of the track's last position, the track adopts that epoch: after an
//!    encoder restart audio and video re-sync, and only the first track to jump is
//!    flagged. Otherwise a new epoch is created that continues the track one nominal step
//!    (its last forward step, or 1 ms) after its last position, and the frame is flagged
//!    `discontinuity`. Tracks that did not jump keep their clock.
//! 5. **The epoch follows the clock**: every normal step of a track on the current epoch
//!    refreshes the epoch's reference point, so mapping stays exact over any broadcast
//!    length (no 32- or 33-bit horizon).
//! 6. **Decode times are strictly increasing per track**: a frame whose dts would not
//!    advance is moved one tick after its predecessor on the same track.
//! 7. **Composition offsets** (pts − dts) are carried as they come, including negative ones
//!    (CMAF writes signed offsets in `trun` version 1).

use crate::TrackId;

/// Steps backwards up to this many milliseconds are tolerated, not a jump.
pub const MAX_BACKWARD_MS: i64 = 1_000;
/// Steps forwards beyond this many milliseconds are a jump.
pub const MAX_FORWARD_MS: i64 = 10_000;
/// Where the first frame of a broadcast sits on the timeline; a track stamped up to this
/// much earlier than the first frame still maps to a non-negative time.
pub const TIMELINE_START_MS: i64 = 10_000;
/// Tracks with a clock of their own; further tracks share one fallback clock.
pub const MAX_TRACKS: usize = 32;

const TICKS_PER_MS: i64 = 90;
/// [`MAX_BACKWARD_MS`] in ticks.
const MAX_BACKWARD: i64 = MAX_BACKWARD_MS * TICKS_PER_MS;
/// [`MAX_FORWARD_MS`] in ticks.
const MAX_FORWARD: i64 = MAX_FORWARD_MS * TICKS_PER_MS;
/// [`TIMELINE_START_MS`] in ticks.
const TIMELINE_START: i64 = TIMELINE_START_MS * TICKS_PER_MS;
/// The wrap of the RTMP millisecond clock, in ticks.
const MS_CLOCK_WRAP: u64 = (1 << 32) * TICKS_PER_MS as u64;
/// The wrap of the MPEG 33-bit 90 kHz clock.
const MPEG_CLOCK_WRAP: u64 = 1 << 33;

/// A normalised decode/presentation time pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizedTime {
    /// Decode time in bus ticks.
    pub dts: i64,
    /// Presentation time in bus ticks.
    pub pts: i64,
    /// True when this track's timeline was re-based at this frame: its raw clock jumped
    /// and it could not re-sync to another track's new epoch, or its first frame was on
    /// an unrelated clock.
    pub discontinuity: bool,
}

/// A raw clock reading: `ticks` in `0..wrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw {
    ticks: u64,
    wrap: u64,
}

impl Raw {
    /// The signed difference `to - self` modulo the wrap (rule 3), `None` across clock kinds.
    fn step_to(self, to: Raw) -> Option<i64> {
        if self.wrap != to.wrap {
            return None;
        }
        let d = (to.ticks + self.wrap - self.ticks) % self.wrap;
        // Both wraps are far below 2^62: the casts are exact.
        let d = d as i64;
        Some(if d >= (self.wrap / 2) as i64 {
            d - self.wrap as i64
        } else {
            d
        })
    }
}

/// The broadcast-wide raw → timeline mapping: `raw` sits at `timeline`.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    generation: u64,
    raw: Raw,
    timeline: i64,
    /// Where a track's jump created this epoch (`None` for the broadcast's first).
    rebased_at: Option<i64>,
}

impl Epoch {
    fn map(&self, raw: Raw) -> Option<i64> {
        Some(self.timeline + self.raw.step_to(raw)?)
    }
}

/// One track's clock (positions in ticks).
#[derive(Debug, Clone)]
struct TrackClock {
    last_raw: Raw,
    timeline: i64,
    /// The last forward step, continued after a jump.
    nominal_step: i64,
    /// The epoch generation this track maps through (`None`: its own, unrelated clock).
    epoch: Option<u64>,
    last_dts: i64,
}

fn is_normal_step(step: i64) -> bool {
    (-MAX_BACKWARD..=MAX_FORWARD).contains(&step)
}

/// The state all tracks share.
#[derive(Debug, Clone)]
struct Shared {
    epoch: Option<Epoch>,
    /// The newest timeline position any track reached.
    newest: i64,
}

impl Shared {
    /// A track's first frame (rule 2): its clock, placed on the timeline.
    fn start(&mut self, raw: Raw) -> (TrackClock, bool) {
        let (timeline, epoch, discontinuity) = match self.epoch {
            None => {
                self.epoch = Some(Epoch {
                    generation: 0,
                    raw,
                    timeline: TIMELINE_START,
                    rebased_at: None,
                });
                (TIMELINE_START, Some(0), false)
            }
            Some(e) => {
                let window = self.newest - TIMELINE_START..=self.newest + MAX_FORWARD;
                match e.map(raw) {
                    Some(mapped) if window.contains(&mapped) => (mapped, Some(e.generation), false),
                    _ => (self.newest, None, true),
                }
            }
        };
        self.newest = self.newest.max(timeline);
        let clock = TrackClock {
            last_raw: raw,
            timeline,
            nominal_step: TICKS_PER_MS,
            epoch,
            last_dts: i64::MIN,
        };
        (clock, discontinuity)
    }

    /// A further frame of a track (rules 3–5). Returns the discontinuity flag.
    fn advance(&mut self, c: &mut TrackClock, raw: Raw) -> bool {
        let s = c.last_raw.step_to(raw).filter(|&s| is_normal_step(s));
        c.last_raw = raw;
        let discontinuity = if let Some(s) = s {
            c.timeline += s;
            if s > 0 {
                c.nominal_step = s;
            }
            false
        } else if let Some(adopted) = self.resync(c, raw) {
            c.timeline = adopted.0;
            c.epoch = Some(adopted.1);
            false
        } else {
            c.timeline += c.nominal_step;
            let generation = self.epoch.map_or(0, |e| e.generation + 1);
            self.epoch = Some(Epoch {
                generation,
                raw,
                timeline: c.timeline,
                rebased_at: Some(c.timeline),
            });
            c.epoch = Some(generation);
            true
        };
        if let Some(e) = self.epoch.as_mut()
            && c.epoch == Some(e.generation)
        {
            e.raw = raw;
            e.timeline = c.timeline;
        }
        self.newest = self.newest.max(c.timeline);
        discontinuity
    }

    /// Rule 4: the position and generation of a recent epoch another track's jump created,
    /// if `raw` mapped through it is a normal step from the track's last position.
    fn resync(&self, c: &TrackClock, raw: Raw) -> Option<(i64, u64)> {
        let e = self.epoch?;
        let at = e.rebased_at?;
        if c.epoch == Some(e.generation) || (c.timeline - at).abs() > MAX_FORWARD {
            return None;
        }
        let mapped = e.map(raw)?;
        is_normal_step(mapped - c.timeline).then_some((mapped, e.generation))
    }
}

/// Turns raw ingest clocks into the bus timeline (see the module docs for the rules).
#[derive(Debug, Clone)]
pub struct TimestampNormalizer {
    shared: Shared,
    tracks: Vec<(TrackId, TrackClock)>,
    /// The clock shared by tracks beyond [`MAX_TRACKS`].
    fallback: Option<TrackClock>,
}

impl TimestampNormalizer {
    /// A normaliser whose timeline starts at `TIMELINE_START_MS` (10 s) with the first frame.
    pub fn new() -> Self {
        Self {
            shared: Shared {
                epoch: None,
                newest: TIMELINE_START,
            },
            tracks: Vec::new(),
            fallback: None,
        }
    }

    /// Normalises a frame of `track` stamped with a 32-bit millisecond decode clock and a
    /// millisecond composition offset (RTMP/FLV).
    pub fn normalize_ms(&mut self, track: TrackId, dts_ms: u32, cts_ms: i32) -> NormalizedTime {
        let raw = Raw {
            ticks: u64::from(dts_ms) * TICKS_PER_MS as u64,
            wrap: MS_CLOCK_WRAP,
        };
        self.normalize(track, raw, i64::from(cts_ms) * TICKS_PER_MS)
    }

    /// Normalises a frame of `track` stamped with a 33-bit 90 kHz decode clock (MPEG-TS
    /// PTS/DTS as in the stream, not unwrapped; bits above 33 are ignored) and a
    /// composition offset in 90 kHz ticks (pts − dts, computed modulo 2^33 by the caller).
    pub fn normalize_90k(&mut self, track: TrackId, dts: u64, cts_ticks: i64) -> NormalizedTime {
        let raw = Raw {
            ticks: dts & (MPEG_CLOCK_WRAP - 1),
            wrap: MPEG_CLOCK_WRAP,
        };
        self.normalize(track, raw, cts_ticks)
    }

    fn normalize(&mut self, track: TrackId, raw: Raw, cts_ticks: i64) -> NormalizedTime {
        let known = self.tracks.iter().position(|(id, _)| *id == track);
        let (clock, discontinuity) = match known {
            Some(i) => {
                let c = &mut self.tracks[i].1;
                let d = self.shared.advance(c, raw);
                (c, d)
            }
            None if self.tracks.len() < MAX_TRACKS => {
                let (c, d) = self.shared.start(raw);
                self.tracks.push((track, c));
                let last = self.tracks.len() - 1;
                (&mut self.tracks[last].1, d)
            }
            None => match &mut self.fallback {
                Some(c) => {
                    let d = self.shared.advance(c, raw);
                    (c, d)
                }
                slot @ None => {
                    let (c, d) = self.shared.start(raw);
                    (slot.insert(c), d)
                }
            },
        };

        // Rule 6.
        let dts = clock.timeline.max(0).max(clock.last_dts.saturating_add(1));
        clock.last_dts = dts;
        NormalizedTime {
            dts,
            pts: dts.saturating_add(cts_ticks),
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
    use crate::TrackKind;

    const V: TrackId = TrackId::VIDEO;
    const A: TrackId = TrackId::AUDIO;

    /// (dts, pts) in ms relative to the timeline start, and the discontinuity flag.
    fn ms(n: &mut TimestampNormalizer, t: TrackId, dts: u32, cts: i32) -> (i64, i64, bool) {
        let r = n.normalize_ms(t, dts, cts);
        let base = TIMELINE_START_MS * TICKS_PER_MS;
        ((r.dts - base) / 90, (r.pts - base) / 90, r.discontinuity)
    }

    #[test]
    fn starts_at_the_timeline_start_and_follows_the_clock() {
        let mut n = TimestampNormalizer::new();
        assert_eq!(ms(&mut n, V, 5000, 66), (0, 66, false));
        assert_eq!(ms(&mut n, A, 5010, 0), (10, 10, false));
        assert_eq!(ms(&mut n, V, 5033, 0), (33, 33, false));
    }

    #[test]
    fn unwraps_32_bit_rollover() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, V, u32::MAX - 15, 0);
        assert_eq!(ms(&mut n, V, 17, 0), (33, 33, false));
    }

    #[test]
    fn rollover_per_track_keeps_tracks_in_sync() {
        let mut n = TimestampNormalizer::new();
        let start = u32::MAX - 99;
        ms(&mut n, V, start, 0);
        // Video rolls over before audio's first frame, which maps through the epoch.
        assert_eq!(ms(&mut n, V, start.wrapping_add(133), 0), (133, 133, false));
        assert_eq!(ms(&mut n, A, start.wrapping_add(90), 0), (90, 90, false));
        assert_eq!(ms(&mut n, A, start.wrapping_add(111), 0), (111, 111, false));
        // Audio rolls over on its own.
        assert_eq!(ms(&mut n, A, 32, 0), (132, 132, false));
        assert_eq!(ms(&mut n, V, start.wrapping_add(166), 0), (166, 166, false));
    }

    #[test]
    fn tracks_behind_the_first_frame_land_earlier() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, V, 20_000, 0);
        assert_eq!(ms(&mut n, A, 19_900, 0), (-100, -100, false));
        assert_eq!(ms(&mut n, A, 19_923, 0), (-77, -77, false));
        assert_eq!(ms(&mut n, V, 20_033, 0), (33, 33, false));
        // A new track 9.9 s behind the newest position still maps, non-negative.
        let t = n.normalize_ms(TrackId::new(TrackKind::Audio, 1), 20_033 - 9_900, 0);
        assert!(!t.discontinuity);
        assert_eq!(t.dts, (TIMELINE_START_MS + 33 - 9_900) * TICKS_PER_MS);
    }

    #[test]
    fn a_track_on_an_unrelated_clock_is_aligned_and_flagged() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, V, 500_000, 0);
        ms(&mut n, V, 500_033, 0);
        // 20 s behind: not the same clock.
        assert_eq!(ms(&mut n, A, 480_000, 0), (33, 33, true));
        assert_eq!(ms(&mut n, A, 480_021, 0), (54, 54, false));
        // An hour ahead: neither.
        let a1 = TrackId::new(TrackKind::Audio, 1);
        assert_eq!(ms(&mut n, a1, 4_100_000, 0), (54, 54, true));
    }

    /// Audio sent 1.5 s behind the video it belongs to, interleaved by send time.
    #[test]
    fn audio_far_behind_video_in_send_order_is_no_jump() {
        let mut n = TimestampNormalizer::new();
        let mut sends: Vec<(u64, TrackId, u32)> = Vec::new();
        for i in 0..300u64 {
            // 30 fps: 0, 33, 67, 100, ...
            let raw = (i * 1000 + 15) / 30;
            sends.push((raw, V, raw as u32));
        }
        for j in 0..470u64 {
            // 1024 samples at 48 kHz: 21.33 ms.
            let raw = j * 1024 * 1000 / 48_000;
            sends.push((raw + 1500, A, raw as u32));
        }
        sends.sort_by_key(|s| s.0);
        let mut out: Vec<(TrackId, u32, i64)> = Vec::new();
        for (_, t, raw) in sends {
            let r = n.normalize_ms(t, raw, 0);
            assert!(!r.discontinuity, "{t} at {raw}");
            out.push((t, raw, r.dts));
        }
        for t in [V, A] {
            let track: Vec<_> = out.iter().filter(|o| o.0 == t).collect();
            for w in track.windows(2) {
                let raw_step = i64::from(w[1].1 - w[0].1);
                assert_eq!(w[1].2 - w[0].2, raw_step * TICKS_PER_MS, "{t}");
            }
        }
        // Same raw time, same timeline time: the tracks stay in sync.
        let at = |t: TrackId, raw: u32| out.iter().find(|o| o.0 == t && o.1 == raw).map(|o| o.2);
        assert_eq!(at(V, 0), at(A, 0));
        assert_eq!(at(V, 8000), at(A, 8000));
        assert!(at(V, 8000).is_some());
        assert_eq!(at(V, 0), Some(TIMELINE_START_MS * TICKS_PER_MS));
    }

    #[test]
    fn jumps_are_absorbed_and_flagged() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, V, 100_000, 0);
        ms(&mut n, V, 100_033, 0);
        // The encoder restarted its clock: the timeline continues one nominal step later.
        assert_eq!(ms(&mut n, V, 0, 0), (66, 66, true));
        assert_eq!(ms(&mut n, V, 33, 0), (99, 99, false));
        // A forward jump of an hour.
        assert_eq!(ms(&mut n, V, 3_600_033, 0), (132, 132, true));
        // A track with a single frame so far continues 1 ms later.
        ms(&mut n, A, 3_600_040, 0);
        assert_eq!(ms(&mut n, A, 7, 0), (140, 140, true));
    }

    #[test]
    fn encoder_restart_resyncs_both_tracks() {
        let mut n = TimestampNormalizer::new();
        // Audio sent 1.5 s behind video, both on the same clock from 100 s.
        let mut raw_v = 100_000u32;
        let mut raw_a = 100_000 - 1500;
        ms(&mut n, V, raw_v, 0);
        for _ in 0..100 {
            raw_v += 33;
            ms(&mut n, V, raw_v, 0);
            raw_a += 21;
            ms(&mut n, A, raw_a, 0);
        }
        let last_v = ms(&mut n, V, raw_v + 33, 0).0;
        // The encoder restarts: video first, audio follows once its old frames are out.
        let (v0, _, disc_v) = ms(&mut n, V, 0, 0);
        assert!(disc_v);
        assert_eq!(v0, last_v + 33);
        let mut video = vec![(0u32, v0)];
        for k in 1..=60u32 {
            video.push((k * 33, ms(&mut n, V, k * 33, 0).0));
            if k < 40 {
                raw_a += 21;
                assert!(!ms(&mut n, A, raw_a, 0).2);
            }
        }
        // Audio's first frame on the new clock adopts video's new epoch: not flagged.
        let (a0, _, disc_a) = ms(&mut n, A, 10, 0);
        assert!(!disc_a);
        assert!((a0 - (v0 + 10)).abs() <= 33, "audio {a0} vs video {v0}");
        let (a1, _, _) = ms(&mut n, A, 31, 0);
        assert_eq!(a1 - a0, 21);
        // Same raw time, same timeline time, within one frame.
        let v_at_33 = video[1].1;
        let (a2, _, _) = ms(&mut n, A, 33, 0);
        assert!((a2 - v_at_33).abs() <= 33);
    }

    #[test]
    fn one_track_jumping_alone() {
        let mut n = TimestampNormalizer::new();
        for k in 0..30u32 {
            ms(&mut n, V, 50_000 + k * 33, 0);
            ms(&mut n, A, 50_000 + k * 21, 0);
        }
        // Only audio resets its clock.
        let (a, _, disc) = ms(&mut n, A, 5, 0);
        assert!(disc);
        assert_eq!(a, 29 * 21 + 21);
        assert_eq!(ms(&mut n, A, 26, 0), (a + 21, a + 21, false));
        // Video is unaffected: no flag, exact spacing.
        assert_eq!(ms(&mut n, V, 50_000 + 30 * 33, 0), (990, 990, false));
        assert_eq!(ms(&mut n, V, 50_000 + 31 * 33, 0), (1023, 1023, false));
        // Much later video jumps too, far from audio's new epoch: flagged, not adopted.
        let (v, _, disc) = ms(&mut n, V, 900_000, 0);
        assert!(disc);
        assert_eq!(v, 1023 + 33);
    }

    #[test]
    fn negative_composition_offsets_are_carried() {
        let mut n = TimestampNormalizer::new();
        ms(&mut n, V, 1000, 0);
        let t = n.normalize_ms(V, 1033, -33);
        assert_eq!(t.pts - t.dts, -33 * 90);
        assert!(t.pts > 0);
    }

    #[test]
    fn dts_strictly_increases_per_track() {
        let mut n = TimestampNormalizer::new();
        let a = n.normalize_ms(V, 0, 0);
        let b = n.normalize_ms(V, 0, 0);
        assert!(b.dts > a.dts);
        // A small step back is kept on the clock but the dts still advances.
        let c = n.normalize_ms(V, 4_294_967_000, 0);
        assert_eq!(c.dts, b.dts + 1);
        // Another track is independent.
        assert_eq!(n.normalize_ms(A, 0, 0).dts, a.dts);
    }

    #[test]
    fn many_tracks_are_bounded_and_never_panic() {
        let mut n = TimestampNormalizer::new();
        let ids: Vec<TrackId> = (0..20u8)
            .flat_map(|i| {
                [
                    TrackId::new(TrackKind::Video, i),
                    TrackId::new(TrackKind::Audio, i),
                ]
            })
            .collect();
        let mut last = std::collections::HashMap::new();
        for k in 0..50u32 {
            for (j, &id) in ids.iter().enumerate() {
                let r = n.normalize_ms(id, 7 * k + j as u32, 0);
                assert!(r.dts >= 0);
                if j < MAX_TRACKS
                    && let Some(prev) = last.insert(id, r.dts)
                {
                    assert!(r.dts > prev);
                }
            }
        }
        assert_eq!(n.tracks.len(), MAX_TRACKS);
        assert!(n.fallback.is_some());
    }

    // 90 kHz (MPEG-TS) input.

    const WRAP_33: u64 = 1 << 33;

    /// (dts, pts) in ticks relative to the timeline start, and the discontinuity flag.
    fn ticks(n: &mut TimestampNormalizer, t: TrackId, dts: u64, cts: i64) -> (i64, i64, bool) {
        let r = n.normalize_90k(t, dts, cts);
        (
            r.dts - TIMELINE_START,
            r.pts - TIMELINE_START,
            r.discontinuity,
        )
    }

    #[test]
    fn ninety_khz_unwraps_33_bit_rollover_as_a_small_step() {
        let mut n = TimestampNormalizer::new();
        assert_eq!(ticks(&mut n, V, WRAP_33 - 900, 0), (0, 0, false));
        assert_eq!(ticks(&mut n, V, 900, 0), (1800, 1800, false));
        assert_eq!(ticks(&mut n, V, 900 + 3003, 0), (4803, 4803, false));
        // Bits above 33 are not part of the clock.
        assert_eq!(
            ticks(&mut n, V, WRAP_33 + 900 + 6006, 0),
            (7806, 7806, false)
        );
        // A small step back across the wrap is tolerated, dts still advances.
        let mut m = TimestampNormalizer::new();
        ticks(&mut m, V, 450, 0);
        assert_eq!(ticks(&mut m, V, WRAP_33 - 450, 0), (1, 1, false));
    }

    #[test]
    fn ninety_khz_keeps_tick_precision_across_the_wrap() {
        let mut n = TimestampNormalizer::new();
        let start = WRAP_33 - 1920 * 5000;
        for k in 0..10_000u64 {
            let raw = (start + k * 1920) % WRAP_33;
            let (dts, pts, disc) = ticks(&mut n, A, raw, 0);
            assert!(!disc);
            assert_eq!(dts, k as i64 * 1920);
            assert_eq!(pts, dts);
        }
    }

    #[test]
    fn ninety_khz_audio_behind_video_stays_in_sync() {
        let mut n = TimestampNormalizer::new();
        // 29.97 fps video and 48 kHz AAC on one clock that wraps during the test; audio is
        // sent 1.5 s behind the video it belongs to.
        let origin = WRAP_33 - 90_000 * 3;
        let mut sends: Vec<(u64, TrackId, u64)> = Vec::new();
        for i in 0..700u64 {
            let t = i * 3003;
            sends.push((t, V, (origin + t) % WRAP_33));
        }
        for j in 0..1100u64 {
            let t = j * 1920;
            sends.push((t + 135_000, A, (origin + t) % WRAP_33));
        }
        sends.sort_by_key(|s| s.0);
        let mut out: Vec<(TrackId, u64, i64)> = Vec::new();
        for (_, t, raw) in sends {
            let r = n.normalize_90k(t, raw, if t == V { 6006 } else { 0 });
            assert!(!r.discontinuity, "{t} at {raw}");
            if t == V {
                assert_eq!(r.pts - r.dts, 6006);
            }
            out.push((t, raw, r.dts));
        }
        let at = |t: TrackId, raw: u64| out.iter().find(|o| o.0 == t && o.1 == raw).map(|o| o.2);
        assert_eq!(at(V, origin), Some(TIMELINE_START));
        assert_eq!(at(A, origin), at(V, origin));
        // Video frame 640 and audio frame 1001 share a raw time, 21 s after the wrap.
        let same = (origin + 3003 * 640) % WRAP_33;
        assert!(at(V, same).is_some());
        assert_eq!(at(V, same), at(A, same));
        assert_eq!(at(V, same), Some(TIMELINE_START + 3003 * 640));
    }

    #[test]
    fn ninety_khz_jumps_are_flagged_and_tracks_resync() {
        let mut n = TimestampNormalizer::new();
        let base = 1_000_000u64;
        for k in 0..30u64 {
            ticks(&mut n, V, base + k * 3000, 0);
            ticks(&mut n, A, base + k * 1920, 0);
        }
        // An encoder restart: video first, continuing one frame later, flagged.
        let (v0, _, disc) = ticks(&mut n, V, 7, 0);
        assert!(disc);
        assert_eq!(v0, 29 * 3000 + 3000);
        // Audio follows onto the new epoch without a flag.
        let (a0, _, disc) = ticks(&mut n, A, 7 + 1920, 0);
        assert!(!disc);
        assert_eq!(a0, v0 + 1920);
        // A jump of an hour forwards.
        let (v1, _, disc) = ticks(&mut n, V, 7 + 90_000 * 3600, 0);
        assert!(disc);
        assert_eq!(v1, v0 + 3000);
    }

    #[test]
    fn ninety_khz_negative_offsets_and_mixed_clock_kinds() {
        let mut n = TimestampNormalizer::new();
        ticks(&mut n, V, 90_000, 0);
        let t = n.normalize_90k(V, 93_003, -3003);
        assert_eq!(t.pts - t.dts, -3003);
        // A track on a millisecond clock cannot map through a 90 kHz epoch: its own clock.
        let m = n.normalize_ms(A, 1000, 0);
        assert!(m.discontinuity);
        assert_eq!(m.dts, TIMELINE_START + 3003);
        // A track switching clock kinds is a jump.
        let s = n.normalize_90k(A, 90_000, 0);
        assert!(s.discontinuity);
        assert!(s.dts > m.dts);
    }
}
