//! [`LiveStream`]: one broadcast's packager, segment window and request answers.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use weir_cmaf::{InitTrack, init_segment};
use weir_media::{AudioConfig, Frame, TrackConfig, TrackKind, VideoConfig};

use crate::answer::{ObjectAnswer, ObjectKind, PlaylistAnswer};
use crate::config::HlsConfig;
use crate::names::ObjectName;
use crate::packager::{AUDIO_TRACK_ID, Event, Packager, VIDEO_TRACK_ID};
use crate::playlist;
use crate::query::PlaylistQuery;
use crate::window::Window;

/// The live LL-HLS state of one broadcast (see the crate docs).
#[derive(Debug)]
pub struct LiveStream {
    config: HlsConfig,
    packager: Packager,
    window: Window,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Init segments still referenced, oldest first; the last one is current.
    inits: VecDeque<(u64, Bytes)>,
    /// A part has been made with the current init segment.
    init_used: bool,
    pending_discontinuity: bool,
    paused: bool,
    ended: bool,
    events: Vec<Event>,
}

// Shared by every shard behind a mutex: it must be Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LiveStream>();
};

impl LiveStream {
    /// A stream with no tracks yet (values of `config` are clamped to usable ranges).
    pub fn new(config: HlsConfig) -> Self {
        let config = config.clamped();
        Self {
            packager: Packager::new(
                config.advertised_part_target(),
                config.segment_target,
                config.max_segment,
            ),
            window: Window::new(config.window, config.segment_target),
            config,
            video: None,
            audio: None,
            inits: VecDeque::new(),
            init_used: false,
            pending_discontinuity: false,
            paused: false,
            ended: false,
            events: Vec::new(),
        }
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    /// Tracks of the (next) broadcast. The same tracks again change nothing. Different
    /// ones flush what is buffered and, once media was packaged with the old ones, start a
    /// new init segment (`init-1.mp4`, …): the next segment carries `EXT-X-MAP` and
    /// `EXT-X-DISCONTINUITY`. Before any media, the init segment is simply replaced.
    pub fn set_tracks(&mut self, video: Option<VideoConfig>, audio: Option<AudioConfig>) {
        if self.ended || (video == self.video && audio == self.audio && !self.inits.is_empty()) {
            return;
        }
        let mut tracks = Vec::with_capacity(2);
        if let Some(v) = &video {
            tracks.push(InitTrack {
                track_id: VIDEO_TRACK_ID,
                config: TrackConfig::Video(v.clone()),
            });
        }
        if let Some(a) = &audio {
            tracks.push(InitTrack {
                track_id: AUDIO_TRACK_ID,
                config: TrackConfig::Audio(a.clone()),
            });
        }
        self.packager
            .set_tracks(video.is_some(), audio.as_ref(), &mut self.events);
        self.apply_events();
        let init = init_segment(&tracks);
        match self.inits.back_mut() {
            Some((_, bytes)) if !self.init_used => *bytes = init,
            Some(&mut (n, _)) => {
                self.inits.push_back((n + 1, init));
                self.pending_discontinuity = true;
            }
            None => self.inits.push_back((0, init)),
        }
        self.init_used = false;
        self.video = video;
        self.audio = audio;
        self.prune_inits();
    }

    /// One frame from the bus; `wallclock_ms` is UNIX ms at ingest (the
    /// `EXT-X-PROGRAM-DATE-TIME` of a segment is that of its first frame). Returns true
    /// when a new part (and so a new playlist) became available: wake the waiters.
    ///
    /// Frames of tracks not configured, and all frames after [`Self::end`], are ignored.
    /// With a video track, frames before its first key frame (audio included) are
    /// dropped, so that every segment starts with one. A frame while paused resumes the
    /// stream (as [`Self::resume`]).
    pub fn push_frame(&mut self, wallclock_ms: u64, frame: Frame) -> bool {
        let known = match frame.track {
            TrackKind::Video => self.video.is_some(),
            TrackKind::Audio => self.audio.is_some(),
        };
        if self.ended || !known {
            return false;
        }
        if self.paused {
            self.resume();
        }
        self.packager.push(wallclock_ms, frame, &mut self.events);
        self.apply_events()
    }

    /// The publisher left and will not come back: flush what is buffered and end the
    /// playlist with `EXT-X-ENDLIST`. Waiters should be woken: every answer is final now.
    pub fn end(&mut self) {
        if self.ended {
            return;
        }
        self.packager.flush(&mut self.events);
        self.apply_events();
        self.ended = true;
    }

    /// The publisher left but may come back: flush the open part and segment so nothing
    /// is lost. Blocking requests keep waiting (and time out) until it returns.
    pub fn pause(&mut self) {
        if self.ended || self.paused {
            return;
        }
        self.packager.flush(&mut self.events);
        self.apply_events();
        self.paused = true;
    }

    /// The same publisher came back: the next segment carries `EXT-X-DISCONTINUITY`, and
    /// incoming timestamps are rebased so the media timeline (and `tfdt`) keeps
    /// increasing from where it stopped. Resuming a stream that was not paused pauses it
    /// first.
    pub fn resume(&mut self) {
        if self.ended {
            return;
        }
        if !self.paused {
            self.pause();
        }
        self.paused = false;
        self.pending_discontinuity = !self.window.is_empty();
        self.packager.resume();
    }

    /// True after [`Self::end`].
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True between [`Self::pause`] and [`Self::resume`] (or the next frame).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The multivariant playlist (`index.m3u8`), or None before tracks are known.
    pub fn multivariant_playlist(&self) -> Option<Bytes> {
        if self.video.is_none() && self.audio.is_none() {
            return None;
        }
        let text = playlist::multivariant(&self.window, self.video.as_ref(), self.audio.as_ref());
        Some(Bytes::from(text))
    }

    /// The media playlist (`media.m3u8`) for a request with LL-HLS parameters.
    ///
    /// - `NotReady` until the first part exists.
    /// - After [`Self::end`], always `Ready`.
    /// - `_HLS_msn=M`: `BadRequest` when M is more than two past the segment in progress;
    ///   `Ready` once segment M is complete or, with `_HLS_part=P`, once part P of it
    ///   exists (a later segment also satisfies); else `Wait`. `BadRequest` also when the
    ///   requested part is further ahead than the Advance Part Limit (3 s worth of parts).
    /// - `_HLS_skip`: a delta update replacing segments older than `CAN-SKIP-UNTIL` with
    ///   `EXT-X-SKIP`.
    pub fn media_playlist(&self, query: &PlaylistQuery) -> PlaylistAnswer {
        if self.window.is_empty() {
            return PlaylistAnswer::NotReady;
        }
        if !self.ended
            && let Some(msn) = query.msn
        {
            let live = self.window.next_msn;
            if msn > live.saturating_add(2) {
                return PlaylistAnswer::BadRequest("_HLS_msn is too far ahead");
            }
            if let Some(part) = query.part
                && self.parts_ahead(msn, part) > self.advance_part_limit()
            {
                return PlaylistAnswer::BadRequest("_HLS_part is too far ahead");
            }
            let open_parts = self.window.open_parts();
            let ready = msn < live || (msn == live && query.part.is_some_and(|p| p < open_parts));
            if !ready {
                return PlaylistAnswer::Wait;
            }
        }
        let text = playlist::media_playlist(&self.config, &self.window, self.ended, query.skip);
        PlaylistAnswer::Ready(Bytes::from(text))
    }

    /// How many parts past the newest existing one part `part` of segment `msn` is.
    fn parts_ahead(&self, msn: u64, part: u64) -> u64 {
        let live = self.window.next_msn;
        if msn < live {
            return 0;
        }
        let per_segment = self
            .config
            .segment_target
            .as_nanos()
            .div_ceil(self.config.part_target.as_nanos().max(1));
        let per_segment = u64::try_from(per_segment).unwrap_or(u64::MAX);
        (msn - live)
            .saturating_mul(per_segment)
            .saturating_add(part)
            .saturating_add(1)
            .saturating_sub(self.window.open_parts())
    }

    /// The Advance Part Limit: 3 s worth of parts (at least 3).
    fn advance_part_limit(&self) -> u64 {
        let target = self.config.part_target.as_nanos().max(1);
        let limit = Duration::from_secs(3).as_nanos().div_ceil(target);
        u64::try_from(limit).unwrap_or(u64::MAX).max(3)
    }

    /// An object by its file name (`init-<n>.mp4`, `seg-<msn>.m4s`, `part-<msn>-<i>.m4s`).
    pub fn object(&self, name: &str) -> ObjectAnswer {
        let Some(parsed) = ObjectName::parse(name) else {
            return ObjectAnswer::Gone;
        };
        let live = self.window.next_msn;
        let waiting = !self.ended;
        match parsed {
            ObjectName::Init(n) => match self.inits.iter().find(|(i, _)| *i == n) {
                Some((_, bytes)) => ObjectAnswer::Ready(bytes.clone().into(), ObjectKind::Init),
                None => ObjectAnswer::Gone,
            },
            ObjectName::Segment(msn) => match self.window.segment(msn) {
                Some(seg) if msn < live => {
                    ObjectAnswer::Ready(seg.data.clone(), ObjectKind::Segment)
                }
                _ if waiting && msn == live => ObjectAnswer::Wait,
                _ => ObjectAnswer::Gone,
            },
            ObjectName::Part(msn, idx) => {
                let found = self
                    .window
                    .segment(msn)
                    .and_then(|s| s.parts.get(usize::try_from(idx).ok()?));
                if let Some(p) = found {
                    return ObjectAnswer::Ready(p.data.clone(), ObjectKind::Part);
                }
                let next = self.window.open_parts();
                let soon = (msn == live && idx <= next.saturating_add(1))
                    || (msn == live.saturating_add(1) && idx == 0);
                if waiting && soon {
                    ObjectAnswer::Wait
                } else {
                    ObjectAnswer::Gone
                }
            }
        }
    }

    /// Bytes held: segments, parts, init segments and buffered samples.
    pub fn memory_bytes(&self) -> usize {
        self.window.memory_bytes()
            + self.inits.iter().map(|(_, b)| b.len()).sum::<usize>()
            + self.packager.buffered_bytes()
    }

    /// Applies packager events to the window; true when a part was added.
    fn apply_events(&mut self) -> bool {
        let mut new_part = false;
        let current_init = self.inits.back().map_or(0, |(n, _)| *n);
        for event in self.events.drain(..) {
            match event {
                Event::Part(part) => {
                    self.window
                        .add_part(part, current_init, &mut self.pending_discontinuity);
                    self.init_used = true;
                    new_part = true;
                }
                Event::SegmentEnd => self.window.close_segment(),
            }
        }
        if new_part {
            self.prune_inits();
        }
        new_part
    }

    /// Drops init segments no kept segment refers to (the current one always stays).
    fn prune_inits(&mut self) {
        let oldest = self.window.oldest_init();
        while self.inits.len() > 1 && oldest.is_some_and(|o| self.inits[0].0 < o) {
            self.inits.pop_front();
        }
    }
}
