//! Frames in, CMAF parts out: decides where parts and segments end.
//!
//! The *master* track drives every cut: video when there is a video track and it is
//! flowing, else audio.
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
//!   jitter), or at the first key frame at all when the segment did not start with one;
//!   audio-master segments cut by time. A segment is cut anyway (without a key frame)
//!   before it would outgrow the announced target duration (see
//!   [`crate::HlsConfig::target_duration`]), before and after each master sample.
//! - Audio samples are muxed (as a second `traf`) into the part that is open when they
//!   arrive; with video, audio is dropped until the first video key frame.
//! - Video stall: once more than `video_stall` of audio (summed sample durations) has
//!   arrived since the last video frame, the audio that arrived since then is set aside,
//!   the held video frame is completed, the part and segment are closed, and audio
//!   becomes the master track (audio-only parts and segments; the set-aside samples
//!   start them). This is measured in arrival order, not by comparing the tracks'
//!   timestamps, so a publisher whose audio is stamped seconds ahead of the video sent
//!   with it does not look stalled, nor does a jump in audio timestamps. Video frames are
//!   then dropped until a key frame (not older than the last video sample): it closes
//!   the audio-only part and segment and starts a new segment as master again. Every
//!   `traf` carries its absolute `tfdt`, so the timeline needs no discontinuity. Before
//!   video first starts there is nothing to stall: audio is dropped as above.
//! - After [`Packager::resume`], incoming timestamps are rebased so that the timeline
//!   (and `tfdt`) continues where it stopped, from the first frame that can start a
//!   segment (the first video key frame); frames older than that are dropped.

use std::time::Duration;

use bytes::Bytes;
use weir_cmaf::Sample;
use weir_media::{AudioConfig, Frame, TIMESCALE, TrackConfig, TrackKind};

use crate::clock::{AudioClock, Placement};
use crate::config::HlsConfig;
use crate::part::{Held, PartBuf, PartOut};

/// Most samples per track in one part (a guard against absurd timestamps).
const MAX_PART_SAMPLES: usize = 1000;

/// What the packager produced.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A part is complete; it belongs to the segment in progress (a new one if none).
    Part(PartOut),
    /// The segment in progress is complete.
    SegmentEnd,
}

/// The video track's state: its held frame and the last known frame duration (ticks).
#[derive(Debug)]
struct VideoTrack {
    held: Option<Held>,
    last_duration: u64,
}

/// The cutting state machine (see the module docs).
#[derive(Debug)]
pub(crate) struct Packager {
    part_target: Duration,
    segment_target: Duration,
    max_segment: Duration,
    video_stall: Duration,
    video: Option<VideoTrack>,
    audio: Option<AudioClock>,
    /// The video track stalled: audio is the master track until a video key frame.
    stalled: bool,
    master_ts: u32,
    part: PartBuf,
    segment_start: Option<u64>,
    /// The segment in progress started with a key frame.
    segment_independent: bool,
    seq: u32,
    need_key: bool,
    offset: i64,
    rebase_pending: bool,
    /// The pending rebase keeps `offset` (see [`Self::resume_in_place`]).
    keep_time: bool,
    /// End of the last video sample, bus ticks (rebased).
    video_end: i64,
    /// End of the last audio sample, bus ticks (rebased).
    audio_end: i64,
    /// Audio (sum of sample durations, audio timescale) that arrived since the last
    /// video frame.
    audio_run: u64,
    /// Audio samples buffered in the part since the last video frame arrived.
    audio_since_video: usize,
}

impl Packager {
    /// A packager with no tracks (frames are ignored until [`Self::set_tracks`]), cutting
    /// as the (clamped) `config` says.
    pub(crate) fn new(config: &HlsConfig) -> Self {
        Self {
            part_target: config.advertised_part_target(),
            segment_target: config.segment_target,
            max_segment: config.max_segment(),
            video_stall: config.video_stall,
            video: None,
            audio: None,
            stalled: false,
            master_ts: TIMESCALE,
            part: PartBuf::default(),
            segment_start: None,
            segment_independent: true,
            seq: 0,
            need_key: true,
            offset: 0,
            rebase_pending: false,
            keep_time: false,
            video_end: 0,
            audio_end: 0,
            audio_run: 0,
            audio_since_video: 0,
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
        self.video = video.then_some(VideoTrack {
            held: None,
            last_duration: u64::from(TIMESCALE / 30),
        });
        self.audio = audio.map(|a| {
            let ts = weir_cmaf::timescale(&TrackConfig::Audio(a.clone()));
            AudioClock::new(a, ts)
        });
        self.update_master();
    }

    /// Ends the open part and segment (holding nothing back); the next segment starts with
    /// the next video key frame (video is the master track again).
    pub(crate) fn flush(&mut self, out: &mut Vec<Event>) {
        self.complete_held(out);
        self.close_part(out);
        self.end_segment(out);
        self.need_key = true;
        self.stalled = false;
        self.audio_run = 0;
        self.audio_since_video = 0;
        self.update_master();
    }

    /// The next frame's timestamps are rebased to continue the timeline.
    pub(crate) fn resume(&mut self) {
        self.rebase_pending = true;
        self.keep_time = false;
    }

    /// Like [`Self::resume`], but timestamps keep their offset: the timeline jumps over
    /// the pause (a rendition that was off while its siblings went on).
    pub(crate) fn resume_in_place(&mut self) {
        self.rebase_pending = true;
        self.keep_time = true;
    }

    /// True while the video track is stalled and audio is packaged alone.
    pub(crate) fn video_stalled(&self) -> bool {
        self.stalled
    }

    /// Bytes of sample data buffered and not yet in a part.
    pub(crate) fn buffered_bytes(&self) -> usize {
        let held = self
            .video
            .as_ref()
            .and_then(|v| v.held.as_ref())
            .map_or(0, |h| h.data.len());
        self.part.bytes + held
    }

    /// Takes one frame.
    pub(crate) fn push(&mut self, wallclock_ms: u64, frame: Frame, out: &mut Vec<Event>) {
        let kind = frame.kind();
        if self.rebase_pending {
            // Rebase on the first frame that can start the new segment, so that it sits
            // exactly where the timeline stopped; frames before it would be dropped anyway.
            let starts = frame.keyframe && (kind == TrackKind::Video || self.video.is_none());
            if !starts {
                return;
            }
            self.rebase_pending = false;
            if !self.keep_time {
                self.offset = self.video_end.max(self.audio_end) - frame.dts;
            }
        }
        let dts = frame.dts.saturating_add(self.offset);
        let pts = frame.pts.saturating_add(self.offset);
        if dts < 0 {
            return;
        }
        match kind {
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

    /// Audio drives the cuts: there is no video track, or it stalled.
    fn audio_master(&self) -> bool {
        self.video.is_none() || self.stalled
    }

    fn update_master(&mut self) {
        self.master_ts = match &self.audio {
            Some(clock) if self.audio_master() => clock.timescale(),
            _ => TIMESCALE,
        };
    }

    /// `d` in master-track ticks.
    fn ticks(&self, d: Duration) -> u64 {
        let t = d.as_nanos() * u128::from(self.master_ts) / 1_000_000_000;
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    fn push_video(&mut self, frame: Held, out: &mut Vec<Event>) {
        let Some(v) = self.video.as_ref() else {
            return;
        };
        match &v.held {
            Some(h) if frame.dts <= h.dts => return,
            None if frame.dts < self.video_end => return,
            None if self.need_key && !frame.keyframe => return,
            _ => {}
        }
        if self.stalled {
            // Back from a stall (a key frame, as need_key is set): it ends the audio-only
            // segment and starts the next one.
            self.close_part(out);
            self.end_segment(out);
            self.stalled = false;
            self.update_master();
            tracing::info!("video resumed after a stall");
        }
        self.audio_run = 0;
        self.audio_since_video = 0;
        let (dts, keyframe) = (frame.dts, frame.keyframe);
        let Some(v) = self.video.as_mut() else {
            return;
        };
        let previous = v.held.replace(frame);
        self.need_key = false;
        if let Some(h) = previous {
            let duration = (dts - h.dts) as u64;
            v.last_duration = duration;
            self.complete_video(h, duration, keyframe, out);
        }
    }

    /// Completes the held video frame (if any) with the last known duration.
    fn complete_held(&mut self, out: &mut Vec<Event>) {
        let held = self
            .video
            .as_mut()
            .and_then(|v| v.held.take().map(|h| (h, v.last_duration)));
        if let Some((h, duration)) = held {
            self.complete_video(h, duration, false, out);
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
        if self.video.is_some() && self.need_key && !self.stalled {
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
        let end_ticks = i64::try_from(end_ticks).unwrap_or(i64::MAX);
        self.audio_end = self.audio_end.max(end_ticks);
        if !self.audio_master() {
            // Timestamp jumps do not count: only the audio that actually arrived.
            self.audio_run = self.audio_run.saturating_add(u64::from(duration));
            let stall = self.video_stall.as_nanos() * u128::from(ts) / 1_000_000_000;
            if u128::from(self.audio_run) > stall {
                self.enter_stall(wallclock_ms, decode, out);
            }
        }
        let audio_master = self.audio_master();
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
            tracing::warn!("dropping audio beyond {MAX_PART_SAMPLES} frames in one part");
            return;
        }
        self.part.push_audio(decode, sample);
        self.audio_since_video += 1;
    }

    /// Video stopped while audio goes on: closes what video started and continues with
    /// audio as the master track, from the audio that arrived since the last video frame.
    /// `decode` and `wallclock_ms` are those of the audio frame that noticed (they date
    /// the set-aside samples).
    fn enter_stall(&mut self, wallclock_ms: u64, decode: u64, out: &mut Vec<Event>) {
        let Some(clock) = self.audio.as_ref() else {
            return;
        };
        let ts = u64::from(clock.timescale()).max(1);
        let tail = self.part.split_audio_tail(self.audio_since_video);
        self.audio_since_video = 0;
        self.audio_run = 0;
        self.complete_held(out);
        self.close_part(out);
        self.end_segment(out);
        self.stalled = true;
        self.need_key = true;
        self.update_master();
        tracing::info!("video stalled: packaging audio only until a video key frame");
        for (at, sample) in tail {
            let back_ms = decode.saturating_sub(at).saturating_mul(1000) / ts;
            let duration = u64::from(sample.duration);
            self.add_master(at, sample, wallclock_ms.saturating_sub(back_ms), out);
            self.after_master(at + duration, duration, true, out);
        }
    }

    /// Adds a master-track sample starting at `start`, closing the segment first if it
    /// would outgrow the target duration, or the part if it would outgrow the part target.
    fn add_master(&mut self, start: u64, sample: Sample, wallclock_ms: u64, out: &mut Vec<Event>) {
        let duration = u64::from(sample.duration);
        let end = start.saturating_add(duration);
        if let Some(segment_start) = self.segment_start
            && end > segment_start.saturating_add(self.ticks(self.max_segment))
        {
            self.close_part(out);
            self.end_segment(out);
        } else if let Some(part_start) = self.part.start
            && end > part_start.saturating_add(self.ticks(self.part_target))
        {
            self.close_part(out);
        }
        if self.segment_start.is_none() {
            self.segment_start = Some(start);
            self.segment_independent = sample.keyframe;
        }
        let audio_master = self.audio_master();
        let p = &mut self.part;
        if p.start.is_none() {
            p.start = Some(start);
            p.independent = sample.keyframe;
            p.wallclock_ms = wallclock_ms;
        }
        p.master_len += duration;
        if audio_master {
            p.push_audio(start, sample);
        } else {
            if p.video.is_empty() {
                p.video_base = start;
            }
            p.bytes += sample.data.len();
            p.video.push(sample);
        }
    }

    /// Decides, at the end `end` of the master sample just added, whether to cut.
    fn after_master(&mut self, end: u64, duration: u64, next_key: bool, out: &mut Vec<Event>) {
        let Some(segment_start) = self.segment_start else {
            return;
        };
        let elapsed = end.saturating_sub(segment_start);
        let long_enough = elapsed + duration / 2 >= self.ticks(self.segment_target);
        let key_cut = next_key && (long_enough || !self.segment_independent);
        let too_long = elapsed.saturating_add(duration) > self.ticks(self.max_segment);
        if key_cut || too_long {
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
        let seq = self.seq.wrapping_add(1);
        if let Some(mut done) = part.finish(seq, self.master_ts) {
            done.gap = self.video.is_some() && done.video_frames == 0;
            self.seq = seq;
            out.push(Event::Part(done));
        }
    }

    fn end_segment(&mut self, out: &mut Vec<Event>) {
        if self.segment_start.take().is_some() {
            out.push(Event::SegmentEnd);
        }
    }
}
