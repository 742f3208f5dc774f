//! Frames in, CMAF parts out: decides where parts and segments end.
//!
//! The *master* track (video when there is one, else audio) drives every cut:
//!
//! - A video sample's duration is only known when the next video frame arrives, so the
//!   last video frame is held until then (or, at a flush, given the previous duration).
//!   Audio samples get nominal durations at once (see [`crate::clock`]).
//! - When a master sample becomes known, the part is closed *before* it if it would make
//!   the part longer than the part target, and *after* it if the next sample (assumed as
//!   long) would. So every part is at most the (advertised) part target long unless one
//!   frame is longer.
//! - A segment ends (with its last part) right before a video key frame once it is at
//!   least `segment_target` long (within half a frame, to absorb millisecond timestamp
//!   jitter); audio-only streams cut by time. A segment reaching `max_segment` without a
//!   key frame is cut anyway (bounded memory beats a perfect cut).
//! - Audio samples are muxed (as a second `traf`) into the part that is open when they
//!   arrive; with video, audio is dropped until the first video key frame.
//! - After [`Packager::resume`], incoming timestamps are rebased so that the timeline
//!   (and `tfdt`) continues where it stopped, from the first frame that can start a
//!   segment (the first video key frame); frames older than that are dropped.

use std::time::Duration;

use bytes::Bytes;
use weir_cmaf::{FragmentTrack, Rope, Sample, fragment};
use weir_media::{AudioConfig, Frame, TIMESCALE, TrackConfig, TrackKind};

use crate::clock::{AudioClock, Placement};

/// `track_ID` of the video track in init segments and fragments.
pub(crate) const VIDEO_TRACK_ID: u32 = 1;
/// `track_ID` of the audio track.
pub(crate) const AUDIO_TRACK_ID: u32 = 2;
/// Most samples per track in one part (a guard against absurd timestamps).
const MAX_PART_SAMPLES: usize = 1000;

/// A finished part.
#[derive(Debug, Clone)]
pub(crate) struct PartOut {
    /// `moof` + `mdat`.
    pub data: Rope,
    /// Duration of its master-track samples.
    pub duration: Duration,
    /// Starts with a key frame (always true for audio-only).
    pub independent: bool,
    /// Wall clock at ingest of its first master sample (UNIX ms).
    pub wallclock_ms: u64,
    /// Video samples in it.
    pub video_frames: u32,
}

/// What the packager produced.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A part is complete; it belongs to the segment in progress (a new one if none).
    Part(PartOut),
    /// The segment in progress is complete.
    SegmentEnd,
}

#[derive(Debug)]
struct Held {
    dts: i64,
    pts: i64,
    keyframe: bool,
    data: Bytes,
    wallclock_ms: u64,
}

#[derive(Debug, Default)]
struct PartBuf {
    video: Vec<Sample>,
    audio: Vec<Sample>,
    video_base: u64,
    audio_base: u64,
    /// Decode time after the last buffered audio sample.
    audio_next: u64,
    /// Master-track time of the first master sample.
    start: Option<u64>,
    /// Sum of master sample durations.
    master_len: u64,
    independent: bool,
    wallclock_ms: u64,
    bytes: usize,
}

/// The cutting state machine (see the module docs).
#[derive(Debug)]
pub(crate) struct Packager {
    part_target: Duration,
    segment_target: Duration,
    max_segment: Duration,
    /// `Some` when there is a video track: its held frame and last duration.
    video: Option<(Option<Held>, u64)>,
    audio: Option<AudioClock>,
    master_ts: u32,
    part: PartBuf,
    segment_start: Option<u64>,
    seq: u32,
    need_key: bool,
    offset: i64,
    rebase_pending: bool,
    /// End of the last video sample, bus ticks (rebased).
    video_end: i64,
    /// End of the last audio sample, bus ticks (rebased).
    audio_end: i64,
}

impl Packager {
    /// A packager with no tracks (frames are ignored until [`Self::set_tracks`]).
    pub(crate) fn new(part_target: Duration, segment_target: Duration, max: Duration) -> Self {
        Self {
            part_target,
            segment_target,
            max_segment: max,
            video: None,
            audio: None,
            master_ts: TIMESCALE,
            part: PartBuf::default(),
            segment_start: None,
            seq: 0,
            need_key: true,
            offset: 0,
            rebase_pending: false,
            video_end: 0,
            audio_end: 0,
        }
    }

    /// Flushes and switches to new tracks; the timeline and fragment numbers continue.
    pub(crate) fn set_tracks(
        &mut self,
        video: bool,
        audio: Option<&AudioConfig>,
        out: &mut Vec<Event>,
    ) {
        self.flush(out);
        self.video = video.then_some((None, u64::from(TIMESCALE / 30)));
        self.audio = audio.map(|a| {
            let ts = weir_cmaf::timescale(&TrackConfig::Audio(a.clone()));
            AudioClock::new(a, ts)
        });
        self.master_ts = match (&self.video, &self.audio) {
            (None, Some(clock)) => clock.timescale(),
            _ => TIMESCALE,
        };
    }

    /// Ends the open part and segment (holding nothing back); the next segment starts with
    /// the next video key frame.
    pub(crate) fn flush(&mut self, out: &mut Vec<Event>) {
        let held = self
            .video
            .as_mut()
            .and_then(|(held, last)| held.take().map(|h| (h, *last)));
        if let Some((h, duration)) = held {
            self.complete_video(h, duration, false, out);
        }
        self.close_part(out);
        self.end_segment(out);
        self.need_key = true;
    }

    /// The next frame's timestamps are rebased to continue the timeline.
    pub(crate) fn resume(&mut self) {
        self.rebase_pending = true;
    }

    /// Bytes of sample data buffered and not yet in a part.
    pub(crate) fn buffered_bytes(&self) -> usize {
        let held = self
            .video
            .as_ref()
            .and_then(|(h, _)| h.as_ref())
            .map_or(0, |h| h.data.len());
        self.part.bytes + held
    }

    /// Takes one frame.
    pub(crate) fn push(&mut self, wallclock_ms: u64, frame: Frame, out: &mut Vec<Event>) {
        if self.rebase_pending {
            // Rebase on the first frame that can start the new segment, so that it sits
            // exactly where the timeline stopped; frames before it would be dropped anyway.
            let starts =
                frame.keyframe && (frame.track == TrackKind::Video || self.video.is_none());
            if !starts {
                return;
            }
            self.rebase_pending = false;
            self.offset = self.video_end.max(self.audio_end) - frame.dts;
        }
        let dts = frame.dts.saturating_add(self.offset);
        let pts = frame.pts.saturating_add(self.offset);
        if dts < 0 {
            return;
        }
        match frame.track {
            TrackKind::Video => {
                let held = Held {
                    dts,
                    pts,
                    keyframe: frame.keyframe,
                    data: frame.data,
                    wallclock_ms,
                };
                self.push_video(held, out);
            }
            TrackKind::Audio => self.push_audio(wallclock_ms, dts, frame.data, out),
        }
    }

    fn ticks(&self, d: Duration) -> u64 {
        let t = d.as_nanos() * u128::from(self.master_ts) / 1_000_000_000;
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    fn push_video(&mut self, frame: Held, out: &mut Vec<Event>) {
        let Some((held, last_duration)) = self.video.as_mut() else {
            return;
        };
        match held {
            Some(h) if frame.dts <= h.dts => return,
            None if frame.dts < self.video_end => return,
            None if self.need_key && !frame.keyframe => return,
            _ => {}
        }
        let (dts, keyframe) = (frame.dts, frame.keyframe);
        let previous = held.replace(frame);
        self.need_key = false;
        if let Some(h) = previous {
            let duration = (dts - h.dts) as u64;
            *last_duration = duration;
            self.complete_video(h, duration, keyframe, out);
        }
    }

    fn complete_video(&mut self, h: Held, duration: u64, next_key: bool, out: &mut Vec<Event>) {
        let start = h.dts as u64;
        let end = start + duration;
        self.video_end = self.video_end.max(end as i64);
        let offset = (h.pts - h.dts).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        let sample = Sample {
            duration: u32::try_from(duration).unwrap_or(u32::MAX),
            composition_offset: offset as i32,
            keyframe: h.keyframe,
            data: h.data,
        };
        self.add_master(start, sample, h.wallclock_ms, out);
        self.after_master(end, duration, next_key, out);
    }

    fn push_audio(&mut self, wallclock_ms: u64, dts: i64, data: Bytes, out: &mut Vec<Event>) {
        if self.video.is_some() && self.need_key {
            return; // video has not started: audio would lead the first segment
        }
        let Some(clock) = self.audio.as_mut() else {
            return;
        };
        let Placement::At {
            decode,
            duration,
            gap,
        } = clock.place(dts, &data)
        else {
            return;
        };
        let ts = u64::from(clock.timescale());
        let end = decode + u64::from(duration);
        let end_ticks = i128::from(end) * i128::from(TIMESCALE) / i128::from(ts);
        self.audio_end = self
            .audio_end
            .max(i64::try_from(end_ticks).unwrap_or(i64::MAX));
        let audio_master = self.video.is_none();
        if gap
            && decode > self.part.audio_next
            && let Some(last) = self.part.audio.last_mut()
        {
            let extra = decode - self.part.audio_next;
            last.duration = last.duration.saturating_add(extra as u32);
            self.part.audio_next = decode;
            if audio_master {
                self.part.master_len += extra;
            }
        }
        let sample = Sample {
            duration,
            composition_offset: 0,
            keyframe: true,
            data,
        };
        if audio_master {
            self.add_master(decode, sample, wallclock_ms, out);
            self.after_master(end, u64::from(duration), true, out);
            return;
        }
        if self.part.audio.len() >= MAX_PART_SAMPLES {
            tracing::warn!("video stalled: dropping audio beyond {MAX_PART_SAMPLES} frames");
            return;
        }
        if self.part.audio.is_empty() {
            self.part.audio_base = decode;
        }
        self.part.audio_next = end;
        self.part.bytes += sample.data.len();
        self.part.audio.push(sample);
    }

    /// Adds a master-track sample starting at `start`, closing the part first if needed.
    fn add_master(&mut self, start: u64, sample: Sample, wallclock_ms: u64, out: &mut Vec<Event>) {
        let duration = u64::from(sample.duration);
        if let Some(part_start) = self.part.start
            && start + duration > part_start + self.ticks(self.part_target)
        {
            self.close_part(out);
        }
        self.segment_start.get_or_insert(start);
        let p = &mut self.part;
        if p.start.is_none() {
            p.start = Some(start);
            p.independent = sample.keyframe;
            p.wallclock_ms = wallclock_ms;
        }
        p.master_len += duration;
        p.bytes += sample.data.len();
        if self.video.is_some() {
            if p.video.is_empty() {
                p.video_base = start;
            }
            p.video.push(sample);
        } else {
            if p.audio.is_empty() {
                p.audio_base = start;
            }
            p.audio_next = start + duration;
            p.audio.push(sample);
        }
    }

    /// Decides, at the end `end` of the master sample just added, whether to cut.
    fn after_master(&mut self, end: u64, duration: u64, next_key: bool, out: &mut Vec<Event>) {
        let Some(segment_start) = self.segment_start else {
            return;
        };
        let elapsed = end.saturating_sub(segment_start);
        let cut_here = next_key && elapsed + duration / 2 >= self.ticks(self.segment_target);
        if cut_here || elapsed >= self.ticks(self.max_segment) {
            self.close_part(out);
            self.end_segment(out);
            return;
        }
        let part_start = self.part.start.unwrap_or(end);
        let full = self.part.video.len().max(self.part.audio.len()) >= MAX_PART_SAMPLES;
        if full || end + duration > part_start + self.ticks(self.part_target) {
            self.close_part(out);
        }
    }

    fn close_part(&mut self, out: &mut Vec<Event>) {
        let part = std::mem::take(&mut self.part);
        if part.start.is_none() {
            return; // no master sample (only audio waiting for video): nothing to play
        }
        let mut tracks = Vec::with_capacity(2);
        if !part.video.is_empty() {
            tracks.push(FragmentTrack {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: part.video_base,
                samples: &part.video,
            });
        }
        if !part.audio.is_empty() {
            tracks.push(FragmentTrack {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: part.audio_base,
                samples: &part.audio,
            });
        }
        self.seq = self.seq.wrapping_add(1);
        let nanos = u128::from(part.master_len) * 1_000_000_000 / u128::from(self.master_ts);
        out.push(Event::Part(PartOut {
            data: fragment(self.seq, &tracks),
            duration: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
            independent: part.independent,
            wallclock_ms: part.wallclock_ms,
            video_frames: u32::try_from(part.video.len()).unwrap_or(u32::MAX),
        }));
    }

    fn end_segment(&mut self, out: &mut Vec<Event>) {
        if self.segment_start.take().is_some() {
            out.push(Event::SegmentEnd);
        }
    }
}
