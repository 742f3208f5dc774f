//! Timestamp normalisation, done once per broadcast at ingest.
//!
//! Ingest protocols hand us wrapping, jumping, sometimes backwards clocks (RTMP: a
//! 32-bit millisecond clock per message, plus a signed 24-bit composition offset), and
//! encoders interleave tracks loosely: audio may be sent a second or more behind the
//! video it belongs to. Everything downstream relies on these rules instead:
//!
//! 1. **One timeline per broadcast**, in [`TIMESCALE`](crate::TIMESCALE) ticks. The first
//!    frame of the broadcast sits at [`TIMELINE_START_MS`], so that tracks stamped up to
//!    that much earlier than the first frame, and negative composition offsets, never
//!    produce negative times. Raw clocks map onto the timeline through one broadcast-wide
//!    *epoch* (raw value ↔ timeline position), so tracks stay in sync: audio stamped
//!    1.5 s behind video lands 1.5 s earlier on the timeline.
//! 2. **Each track has its own clock.** A track's first frame maps through the current
//!    epoch. If that lands more than [`TIMELINE_START_MS`] before, or more than
//!    [`MAX_FORWARD_MS`] after, the newest timeline position of any track, the track runs
//!    on an unrelated clock: it starts at that newest position instead and the frame is
//!    flagged `discontinuity`. Up to [`MAX_TRACKS`] tracks get their own clock; further
//!    tracks share one fallback clock (never a panic, never unbounded state).
//! 3. **Rollover**: a track's raw clock is unwrapped by taking the signed 32-bit
//!    difference to *that track's* previous raw value, so 0xFFFF_FFF0 → 0x10 is a step of
//!    +32 ms. Steps from −[`MAX_BACKWARD_MS`] to +[`MAX_FORWARD_MS`] are applied as they
//!    are (small steps back tolerate sloppy encoders; rule 6 keeps dts increasing).
//! 4. **Jumps** (a step of a track more than [`MAX_FORWARD_MS`] forwards or
//!    [`MAX_BACKWARD_MS`] backwards: an encoder restart, a clock reset) are absorbed per
//!    track. If another track's jump re-based the epoch recently (within
//!    [`MAX_FORWARD_MS`] of this track's position) and this raw value mapped through that
//!    epoch lands within a normal step (rule 3) of the track's last position, the track
//!    adopts that epoch: after an encoder restart audio and video re-sync, and only the
//!    first track to jump is flagged. Otherwise a new epoch is created that continues the
//!    track one nominal step (its last forward step, or 1 ms) after its last position,
//!    and the frame is flagged `discontinuity`. Tracks that did not jump keep their clock.
//! 5. **The epoch follows the clock**: every normal step of a track on the current epoch
//!    refreshes the epoch's reference point, so mapping stays exact over any broadcast
//!    length (no 32-bit horizon).
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

/// The broadcast-wide raw → timeline mapping: `raw` sits at `timeline_ms`.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    generation: u64,
    raw: u32,
    timeline_ms: i64,
    /// Where a track's jump created this epoch (`None` for the broadcast's first).
    rebased_at_ms: Option<i64>,
}

impl Epoch {
    fn map(&self, raw: u32) -> i64 {
        self.timeline_ms + step(self.raw, raw)
    }
}

/// One track's clock.
#[derive(Debug, Clone)]
struct TrackClock {
    last_raw: u32,
    timeline_ms: i64,
    /// The last forward step, continued after a jump.
    nominal_step_ms: i64,
    /// The epoch generation this track maps through (`None`: its own, unrelated clock).
    epoch: Option<u64>,
    last_dts: i64,
}

/// The signed 32-bit difference `to - from` (rule 3).
fn step(from: u32, to: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

fn is_normal_step(step: i64) -> bool {
    (-MAX_BACKWARD_MS..=MAX_FORWARD_MS).contains(&step)
}

/// The state all tracks share.
#[derive(Debug, Clone)]
struct Shared {
    epoch: Option<Epoch>,
    /// The newest timeline position any track reached.
    newest_ms: i64,
}

impl Shared {
    /// A track's first frame (rule 2): its clock, placed on the timeline.
    fn start(&mut self, raw: u32) -> (TrackClock, bool) {
        let (timeline_ms, epoch, discontinuity) = match self.epoch {
            None => {
                self.epoch = Some(Epoch {
                    generation: 0,
                    raw,
                    timeline_ms: TIMELINE_START_MS,
                    rebased_at_ms: None,
                });
                (TIMELINE_START_MS, Some(0), false)
            }
            Some(e) => {
                let mapped = e.map(raw);
                let window = self.newest_ms - TIMELINE_START_MS..=self.newest_ms + MAX_FORWARD_MS;
                if window.contains(&mapped) {
                    (mapped, Some(e.generation), false)
                } else {
                    (self.newest_ms, None, true)
                }
            }
        };
        self.newest_ms = self.newest_ms.max(timeline_ms);
        let clock = TrackClock {
            last_raw: raw,
            timeline_ms,
            nominal_step_ms: 1,
            epoch,
            last_dts: i64::MIN,
        };
        (clock, discontinuity)
    }

    /// A further frame of a track (rules 3–5). Returns the discontinuity flag.
    fn advance(&mut self, c: &mut TrackClock, raw: u32) -> bool {
        let s = step(c.last_raw, raw);
        c.last_raw = raw;
        let discontinuity = if is_normal_step(s) {
            c.timeline_ms += s;
            if s > 0 {
                c.nominal_step_ms = s;
            }
            false
        } else if let Some(adopted) = self.resync(c, raw) {
            c.timeline_ms = adopted.0;
            c.epoch = Some(adopted.1);
            false
        } else {
            c.timeline_ms += c.nominal_step_ms;
            let generation = self.epoch.map_or(0, |e| e.generation + 1);
            self.epoch = Some(Epoch {
                generation,
                raw,
                timeline_ms: c.timeline_ms,
                rebased_at_ms: Some(c.timeline_ms),
            });
            c.epoch = Some(generation);
            true
        };
        if let Some(e) = self.epoch.as_mut()
            && c.epoch == Some(e.generation)
        {
            e.raw = raw;
            e.timeline_ms = c.timeline_ms;
        }
        self.newest_ms = self.newest_ms.max(c.timeline_ms);
        discontinuity
    }

    /// Rule 4: the position and generation of a recent epoch another track's jump created,
    /// if `raw` mapped through it is a normal step from the track's last position.
    fn resync(&self, c: &TrackClock, raw: u32) -> Option<(i64, u64)> {
        let e = self.epoch?;
        let at = e.rebased_at_ms?;
        if c.epoch == Some(e.generation) || (c.timeline_ms - at).abs() > MAX_FORWARD_MS {
            return None;
        }
        let mapped = e.map(raw);
        is_normal_step(mapped - c.timeline_ms).then_some((mapped, e.generation))
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
                newest_ms: TIMELINE_START_MS,
            },
            tracks: Vec::new(),
            fallback: None,
        }
    }

    /// Normalises a frame of `track` stamped with a 32-bit millisecond decode clock and a
    /// millisecond composition offset (RTMP/FLV).
    pub fn normalize_ms(&mut self, track: TrackId, dts_ms: u32, cts_ms: i32) -> NormalizedTime {
        let known = self.tracks.iter().position(|(id, _)| *id == track);
        let (clock, discontinuity) = match known {
            Some(i) => {
                let c = &mut self.tracks[i].1;
                let d = self.shared.advance(c, dts_ms);
                (c, d)
            }
            None if self.tracks.len() < MAX_TRACKS => {
                let (c, d) = self.shared.start(dts_ms);
                self.tracks.push((track, c));
                let last = self.tracks.len() - 1;
                (&mut self.tracks[last].1, d)
            }
            None => match &mut self.fallback {
                Some(c) => {
                    let d = self.shared.advance(c, dts_ms);
                    (c, d)
                }
                slot @ None => {
                    let (c, d) = self.shared.start(dts_ms);
                    (slot.insert(c), d)
                }
            },
        };

        // Rule 6.
        let dts = (clock.timeline_ms.max(0) * TICKS_PER_MS).max(clock.last_dts.saturating_add(1));
        clock.last_dts = dts;
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
}
