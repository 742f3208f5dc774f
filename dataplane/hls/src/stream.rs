//! [`LiveStream`]: one broadcast's packager and segment window, published as
//! [`Snapshot`]s.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use weir_cmaf::{InitTrack, init_segment};
use weir_media::{AudioConfig, Frame, TrackConfig, TrackKind, VideoConfig};

use crate::answer::{ObjectAnswer, PlaylistAnswer};
use crate::config::HlsConfig;
use crate::packager::{Event, Packager};
use crate::part::{AUDIO_TRACK_ID, VIDEO_TRACK_ID};
use crate::playlist::RenditionReport;
use crate::query::PlaylistQuery;
use crate::snapshot::{Snapshot, Source};
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
    /// The current snapshot, rendered after each change.
    snapshot: Arc<Snapshot>,
    /// Where the broadcast's other renditions are (see [`Self::set_rendition_reports`]).
    reports: Vec<RenditionReport>,
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
        let window = Window::new(config.window, config.target_duration_secs());
        let inits = VecDeque::new();
        let snapshot = Arc::new(Snapshot::render(&Source {
            config: &config,
            window: &window,
            inits: &inits,
            video: None,
            audio: None,
            ended: false,
            video_stalled: false,
            reports: &[],
        }));
        Self {
            packager: Packager::new(&config),
            window,
            config,
            video: None,
            audio: None,
            inits,
            init_used: false,
            pending_discontinuity: false,
            paused: false,
            ended: false,
            events: Vec::new(),
            snapshot,
            reports: Vec::new(),
        }
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    /// The current snapshot: what viewers are answered from. A new one is rendered after
    /// each change (a part added, a segment closed, tracks set, pause, resume, end), so
    /// holding one never blocks the stream and it never changes under its reader.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }

    /// The broadcast's other renditions and how far they have got, listed as
    /// `EXT-X-RENDITION-REPORT` in the media playlists rendered from now on (the next
    /// change renders them; nothing is rendered here). Renditions cut at the same key
    /// frames advance together, so reports lag by at most the part in progress.
    pub fn set_rendition_reports(&mut self, reports: Vec<RenditionReport>) {
        self.reports = reports;
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
        self.publish();
    }

    /// One frame from the bus; `wallclock_ms` is UNIX ms at ingest (the
    /// `EXT-X-PROGRAM-DATE-TIME` of a segment is that of its first frame). Returns true
    /// when the snapshot changed (a part was added or a segment completed): wake the
    /// waiters whose position was reached.
    ///
    /// Only the default tracks are packaged: frames whose `track.index` is not 0 are
    /// ignored (a multivariant playlist over several renditions is not built yet), as
    /// are frames of tracks not configured and all frames after [`Self::end`]. With a
    /// video track, frames before its first key frame (audio included) are dropped, so
    /// that every segment starts with one. A frame while paused resumes the stream (as
    /// [`Self::resume`]).
    pub fn push_frame(&mut self, wallclock_ms: u64, frame: Frame) -> bool {
        let known = match frame.kind() {
            TrackKind::Video => self.video.is_some(),
            TrackKind::Audio => self.audio.is_some(),
        };
        if self.ended || !known || frame.track.index != 0 {
            return false;
        }
        if self.paused {
            self.resume();
        }
        self.packager.push(wallclock_ms, frame, &mut self.events);
        let changed = self.apply_events();
        if changed {
            self.publish();
        }
        changed
    }

    /// The publisher left and will not come back: flush what is buffered and end the
    /// playlist with `EXT-X-ENDLIST`. Wake every waiter: every answer is final now.
    pub fn end(&mut self) {
        if self.ended {
            return;
        }
        self.packager.flush(&mut self.events);
        self.apply_events();
        self.ended = true;
        self.publish();
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
        self.publish();
    }

    /// The same publisher came back: the next segment carries `EXT-X-DISCONTINUITY`, and
    /// incoming timestamps are rebased so the media timeline (and `tfdt`) keeps
    /// increasing from where it stopped. Resuming a stream that was not paused pauses it
    /// first.
    pub fn resume(&mut self) {
        self.resume_with(false);
    }

    /// Resumes after a pause keeping the frames' own timestamps (no rebase): for a
    /// rendition that was switched off while the broadcast's other renditions went on,
    /// so that it stays on their timeline. The next segment starts at a key frame with
    /// `EXT-X-DISCONTINUITY` (the media timeline jumps over the pause).
    pub fn resume_in_place(&mut self) {
        self.resume_with(true);
    }

    fn resume_with(&mut self, keep_time: bool) {
        if self.ended {
            return;
        }
        if !self.paused {
            self.pause();
        }
        self.paused = false;
        self.pending_discontinuity = !self.window.is_empty();
        if keep_time {
            self.packager.resume_in_place();
        } else {
            self.packager.resume();
        }
        self.publish();
    }

    /// True after [`Self::end`].
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True between [`Self::pause`] and [`Self::resume`] (or the next frame).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The multivariant playlist of the current snapshot
    /// ([`Snapshot::multivariant_playlist`]).
    pub fn multivariant_playlist(&self) -> Option<Bytes> {
        self.snapshot.multivariant_playlist()
    }

    /// The media playlist of the current snapshot ([`Snapshot::media_playlist`]).
    pub fn media_playlist(&self, query: &PlaylistQuery) -> PlaylistAnswer {
        self.snapshot.media_playlist(query)
    }

    /// An object of the current snapshot ([`Snapshot::object`]).
    pub fn object(&self, name: &str) -> ObjectAnswer {
        self.snapshot.object(name)
    }

    /// Bytes held: segments, parts, init segments and buffered samples.
    pub fn memory_bytes(&self) -> usize {
        self.window.memory_bytes()
            + self.inits.iter().map(|(_, b)| b.len()).sum::<usize>()
            + self.packager.buffered_bytes()
    }

    /// Renders the snapshot of the current state.
    fn publish(&mut self) {
        self.snapshot = Arc::new(Snapshot::render(&Source {
            config: &self.config,
            window: &self.window,
            inits: &self.inits,
            video: self.video.as_ref(),
            audio: self.audio.as_ref(),
            ended: self.ended,
            video_stalled: self.packager.video_stalled(),
            reports: &self.reports,
        }));
    }

    /// Applies packager events to the window; true when there were any.
    fn apply_events(&mut self) -> bool {
        let mut new_part = false;
        let changed = !self.events.is_empty();
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
        changed
    }

    /// Drops init segments no kept segment refers to (the current one always stays).
    fn prune_inits(&mut self) {
        let oldest = self.window.oldest_init();
        while self.inits.len() > 1 && oldest.is_some_and(|o| self.inits[0].0 < o) {
            self.inits.pop_front();
        }
    }
}
