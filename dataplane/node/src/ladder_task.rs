//! The transcode ladder as a bus subscriber and publisher.
//!
//! One task per broadcast with a ladder, on the shard that created it. It subscribes to
//! the broadcast the ingest publishes (the *source*), hands its primary video track to a
//! [`weir_codec::Ladder`] (GStreamer threads decode once and encode every rung; nothing
//! heavy runs here), and publishes the *renditions* broadcast that the rendition
//! packager (`renditions_task`) subscribes to:
//!
//! - video track `i` is rung `i` of the ladder (top first; a passthrough rung is the
//!   source's own frames), audio track 0 the source's first audio track, unchanged;
//! - every frame keeps the source's timestamps, so all tracks stay on one timeline, and
//!   audio is held until the lowest rung's video has caught up with it (the encoders'
//!   delay), so the renditions bus interleaves tracks in time as the bus contract asks;
//! - the renditions' track set is announced once every rung has produced its
//!   configuration (frames wait, bounded), and again when a rung's avcC changes.
//!
//! A source the ladder cannot take (not H.264, GStreamer missing, the engine failing) is
//! passed through as it is, one video and one audio track, and says why in the log, the
//! `weir_ladder_failures_total` metric and [`LadderStatus::failed`]. Starting and
//! stopping a ladder (building a pipeline, probing NVENC, joining threads) runs on a
//! blocking thread, never on the shard.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;
use weir_bus::{Broadcast, BusEvent, Publisher, Subscriber, TrackSet};
use weir_codec::{Ladder, LadderConfig, LadderOutput, PushError};
use weir_media::{Frame, TIMESCALE, TrackConfig, TrackId, TrackKind, VideoConfig};

use crate::hooks::{TranscoderReport, TranscoderRung};
use crate::registry::{Registry, Stream};

/// Audio held for the video to catch up is released anyway past this much (ticks).
const MAX_AUDIO_HOLD: i64 = 2 * TIMESCALE as i64;
/// Most frames held: audio waiting for video, rung frames waiting for the track set,
/// source frames waiting for a ladder to start.
const MAX_HELD_FRAMES: usize = 1024;
/// The renditions' track set is announced after this long even if a rung has not
/// produced its configuration (ticks of source time).
const CONFIG_WAIT: i64 = 3 * TIMESCALE as i64;
/// Longest wait for a ladder to emit its last frames after its source left.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// One rung as a broadcast's status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RungStatus {
    /// Rendition name (`720p`, `source`).
    pub name: String,
    /// Output width.
    pub width: u16,
    /// Output height.
    pub height: u16,
    /// Nominal video bitrate, kbit/s (0: unknown, a passthrough rung added on top).
    pub video_kbps: u32,
    /// The source's own frames.
    pub passthrough: bool,
}

/// What the ladder of a broadcast is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LadderStatus {
    /// The rungs, top first (video track `i` of the renditions is rung `i`).
    pub rungs: Vec<RungStatus>,
    /// Encoder in use (`x264enc`, `nvh264enc`), when one runs.
    pub encoder: Option<String>,
    /// Encoded rungs off because the engine could not keep up, from the top.
    pub dropped_rungs: usize,
    /// Why the source is passed through instead of transcoded.
    pub failed: Option<String>,
}

impl LadderStatus {
    /// The status as the control plane is told it: the rungs switched off are the
    /// encoded ones from the top.
    pub fn report(&self) -> TranscoderReport {
        let mut off = self.dropped_rungs;
        let rungs = self
            .rungs
            .iter()
            .map(|r| {
                let dropped = !r.passthrough && off > 0;
                if dropped {
                    off -= 1;
                }
                TranscoderRung {
                    name: r.name.clone(),
                    width: u32::from(r.width),
                    height: u32::from(r.height),
                    bitrate: u64::from(r.video_kbps) * 1000,
                    passthrough: r.passthrough,
                    dropped,
                }
            })
            .collect();
        TranscoderReport {
            encoder: self.encoder.clone(),
            rungs,
            dropped_rungs: u32::try_from(self.dropped_rungs).unwrap_or(u32::MAX),
            failure: self.failed.clone(),
        }
    }
}

/// What the ladder task of a new broadcast needs (see `registry`).
#[derive(Debug)]
pub struct LadderJob {
    /// Its subscription to the source broadcast.
    pub source: Subscriber,
    /// The renditions broadcast it publishes.
    pub renditions: Broadcast,
    /// The ladder's settings.
    pub config: LadderConfig,
}

/// The engine side: a running ladder, or none (passthrough).
enum Engine {
    /// No source video yet, or between publishers.
    Idle,
    /// A ladder is being started for this source configuration; frames wait.
    Starting(VideoConfig),
    /// Transcoding.
    Running(VideoConfig, Ladder),
    /// The source publisher left: the ladder drains its last frames (until `Finished`
    /// or the deadline), then the renditions' publisher leaves too.
    Draining(Ladder, Instant),
    /// Passing the source through (the reason is in the status).
    Passthrough,
}

struct State {
    stream: Arc<Stream>,
    registry: Arc<Registry>,
    config: LadderConfig,
    renditions: Broadcast,
    out: Option<Publisher>,
    engine: Engine,
    notify: Arc<Event>,
    /// The source's current tracks.
    source_tracks: Option<Arc<TrackSet>>,
    source_video: Option<TrackId>,
    source_audio: Option<TrackId>,
    /// Rung configurations seen, by rung.
    rung_configs: Vec<Option<TrackConfig>>,
    /// The track set announced on the renditions bus.
    announced: Option<TrackSet>,
    /// Source frames waiting for a starting ladder.
    waiting_source: Vec<Frame>,
    /// Rung frames waiting for the track set.
    waiting_out: Vec<Frame>,
    /// Audio waiting for video to catch up.
    audio: VecDeque<Frame>,
    /// Last dts the lowest rung produced.
    video_mark: Option<i64>,
    /// First rung output time (for [`CONFIG_WAIT`]).
    first_output: Option<i64>,
    /// Rungs switched off by the overload policy (left out of the renditions' tracks).
    off_rungs: Vec<usize>,
}

impl State {
    fn publisher(&mut self) -> Option<&mut Publisher> {
        if self.out.is_none() {
            self.out = self.renditions.publish(true).ok();
        }
        self.out.as_mut()
    }

    fn on_source_tracks(&mut self, tracks: Arc<TrackSet>) {
        self.source_video = tracks.primary_video();
        self.source_audio = tracks.first(TrackKind::Audio);
        let video = self
            .source_video
            .and_then(|id| tracks.video(id.index))
            .cloned();
        self.source_tracks = Some(tracks);
        match (&self.engine, video) {
            (Engine::Running(cfg, _) | Engine::Starting(cfg), Some(v)) if *cfg == v => {
                self.announce(); // the audio may have changed
            }
            (Engine::Passthrough, _) => self.announce_passthrough(),
            (_, Some(v)) => self.start(v),
            (_, None) => {
                // Audio only: nothing to transcode.
                self.stop_engine();
                self.engine = Engine::Passthrough;
                self.announce_passthrough();
            }
        }
    }

    /// Starts a ladder for `video` on a blocking thread; `Starting` until it is up.
    fn start(&mut self, video: VideoConfig) {
        self.stop_engine();
        self.rung_configs.clear();
        self.off_rungs.clear();
        self.video_mark = None;
        self.first_output = None;
        self.engine = Engine::Starting(video);
    }

    fn stop_engine(&mut self) {
        if let Engine::Running(_, ladder) | Engine::Draining(ladder, _) =
            std::mem::replace(&mut self.engine, Engine::Idle)
        {
            // Joining GStreamer's threads can take a while: not on the shard.
            crate::affinity::spawn_thread(move || ladder.stop());
        }
        self.waiting_source.clear();
        self.waiting_out.clear();
    }

    /// The ladder for `video` is up (or failed to start).
    fn started(&mut self, video: &VideoConfig, ladder: Result<Ladder, String>) {
        match &self.engine {
            Engine::Starting(cfg) if cfg == video => {}
            _ => {
                if let Ok(l) = ladder {
                    crate::affinity::spawn_thread(move || l.stop());
                }
                return; // superseded
            }
        }
        match ladder {
            Ok(ladder) => {
                let rungs = ladder.rungs();
                let encoder = ladder.selection().map(|s| s.encoder.factory().to_owned());
                tracing::info!(
                    channel = %self.stream.channel,
                    rungs = %rungs.iter().map(|r| format!("{}={}x{}", r.name, r.width, r.height)).collect::<Vec<_>>().join(","),
                    encoder = encoder.as_deref().unwrap_or("none (passthrough)"),
                    "transcode ladder started"
                );
                *self.stream.ladder.lock() = LadderStatus {
                    rungs: rungs
                        .iter()
                        .map(|r| RungStatus {
                            name: r.name.clone(),
                            width: r.width,
                            height: r.height,
                            video_kbps: r.video_bitrate_kbps,
                            passthrough: r.passthrough,
                        })
                        .collect(),
                    encoder,
                    dropped_rungs: 0,
                    failed: None,
                };
                self.report_status();
                self.rung_configs = vec![None; rungs.len()];
                let notify = self.notify.clone();
                ladder.set_notify(Box::new(move || {
                    notify.notify(1);
                }));
                let waiting = std::mem::take(&mut self.waiting_source);
                for f in &waiting {
                    let _ = ladder.push(f);
                }
                self.engine = Engine::Running(video.clone(), ladder);
            }
            Err(why) => self.fail(why),
        }
    }

    /// Gives up transcoding this source: it is passed through from now on.
    fn fail(&mut self, why: String) {
        tracing::warn!(channel = %self.stream.channel, %why, "transcode ladder unavailable: the source is packaged as it is");
        metrics::counter!("weir_ladder_failures_total").increment(1);
        self.stop_engine();
        {
            let mut status = self.stream.ladder.lock();
            status.failed = Some(why);
            status.encoder = None;
        }
        self.report_status();
        self.engine = Engine::Passthrough;
        self.announce_passthrough();
    }

    /// Tells the control plane what the ladder does now (GraphQL `Stream.transcoder`).
    fn report_status(&self) {
        let report = self.stream.ladder.lock().report();
        self.registry.events().transcoder(&self.stream.info, report);
    }

    fn on_source_frame(&mut self, frame: Frame) {
        if Some(frame.track) == self.source_audio {
            if self.audio.len() >= MAX_HELD_FRAMES {
                self.audio.pop_front();
            }
            self.audio.push_back(Frame {
                track: TrackId::new(TrackKind::Audio, 0),
                ..frame
            });
            return;
        }
        if Some(frame.track) != self.source_video {
            return;
        }
        match &self.engine {
            Engine::Running(_, ladder) => match ladder.push(&frame) {
                Ok(()) | Err(PushError::AwaitingKeyframe) => {}
                Err(PushError::Full) => {
                    metrics::counter!("weir_ladder_input_dropped_total").increment(1);
                }
                Err(e) => {
                    tracing::debug!(channel = %self.stream.channel, error = %e, "ladder refused a frame")
                }
            },
            Engine::Starting(_) => {
                if frame.keyframe {
                    self.waiting_source.clear(); // from the newest key frame on
                }
                if self.waiting_source.len() < MAX_HELD_FRAMES {
                    self.waiting_source.push(frame);
                }
            }
            Engine::Passthrough => {
                self.video_mark = Some(frame.dts);
                let frame = Frame {
                    track: TrackId::new(TrackKind::Video, 0),
                    ..frame
                };
                if let Some(out) = self.publisher() {
                    out.push(frame);
                }
            }
            Engine::Idle | Engine::Draining(..) => {}
        }
    }

    /// Moves what the ladder produced onto the renditions bus.
    fn drain_ladder(&mut self) {
        loop {
            let (Engine::Running(_, ladder) | Engine::Draining(ladder, _)) = &self.engine else {
                return;
            };
            let Some(output) = ladder.try_recv() else {
                return;
            };
            let rungs = ladder.rungs().len();
            let encoded_from_top = |n: usize| -> Vec<usize> {
                ladder
                    .rungs()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !r.passthrough)
                    .map(|(i, _)| i)
                    .take(n)
                    .collect()
            };
            match output {
                LadderOutput::Config { rung, config } => {
                    if let Some(slot) = self.rung_configs.get_mut(rung) {
                        *slot = Some(config);
                    }
                    self.announce();
                }
                LadderOutput::Frame { rung, mut frame } => {
                    let Ok(index) = u8::try_from(rung) else {
                        continue;
                    };
                    frame.track = TrackId::new(TrackKind::Video, index);
                    if rung + 1 == rungs {
                        self.video_mark =
                            Some(self.video_mark.map_or(frame.dts, |m| m.max(frame.dts)));
                    }
                    let first = *self.first_output.get_or_insert(frame.dts);
                    if self.announced.is_none() && frame.dts - first >= CONFIG_WAIT {
                        self.announce_partial();
                    }
                    if self.announced.is_some() {
                        if let Some(out) = self.publisher() {
                            out.push(frame);
                        }
                    } else if self.waiting_out.len() < MAX_HELD_FRAMES {
                        self.waiting_out.push(frame);
                    }
                }
                LadderOutput::Overloaded { dropped_rungs } => {
                    tracing::warn!(channel = %self.stream.channel, dropped_rungs, "transcoder cannot keep up: top rungs dropped");
                    self.stream.ladder.lock().dropped_rungs = dropped_rungs;
                    metrics::counter!("weir_ladder_overloads_total").increment(1);
                    self.off_rungs = encoded_from_top(dropped_rungs);
                    self.announce();
                    self.report_status();
                }
                LadderOutput::Recovered { dropped_rungs } => {
                    tracing::info!(channel = %self.stream.channel, dropped_rungs, "transcoder keeps up again: a rung is back");
                    self.stream.ladder.lock().dropped_rungs = dropped_rungs;
                    self.off_rungs = encoded_from_top(dropped_rungs);
                    self.announce();
                    self.report_status();
                }
                LadderOutput::Bitrates {
                    kbps,
                    complexity_millibits,
                } => self.bitrates_changed(&kbps, complexity_millibits),
                LadderOutput::Error(why) => self.fail(why),
                LadderOutput::Finished => {
                    if matches!(self.engine, Engine::Draining(..)) {
                        self.left();
                    }
                }
            }
        }
    }

    /// Per-title mode moved the rungs' bitrates: the status (and with it the renditions'
    /// nominal bitrates in the playlists and the MPD) follows.
    fn bitrates_changed(&mut self, kbps: &[u32], complexity_millibits: u32) {
        {
            let mut status = self.stream.ladder.lock();
            for (rung, &k) in status.rungs.iter_mut().zip(kbps) {
                if !rung.passthrough && k > 0 {
                    rung.video_kbps = k;
                    metrics::gauge!("weir_ladder_rung_kbps", "rung" => rung.name.clone())
                        .set(f64::from(k));
                }
            }
        }
        tracing::info!(channel = %self.stream.channel, complexity_millibits, ?kbps, "per-title: rung bitrates follow the content");
        self.report_status();
    }

    /// Announces the renditions' tracks once every rung's configuration is known.
    fn announce(&mut self) {
        if matches!(self.engine, Engine::Running(..))
            && !self.rung_configs.is_empty()
            && self.rung_configs.iter().all(Option::is_some)
        {
            self.announce_partial();
        }
    }

    /// Announces the rungs whose configuration is known, and releases held rung frames.
    fn announce_partial(&mut self) {
        let mut set = TrackSet::new();
        for (i, c) in self.rung_configs.iter().enumerate() {
            if self.off_rungs.contains(&i) {
                continue;
            }
            if let (Some(c), Ok(i)) = (c, u8::try_from(i)) {
                let _ = set.insert(TrackId::new(TrackKind::Video, i), c.clone());
            }
        }
        if set.is_empty() {
            return;
        }
        self.add_source_audio(&mut set);
        self.set_tracks(set);
        for f in std::mem::take(&mut self.waiting_out) {
            if let Some(out) = self.publisher() {
                out.push(f);
            }
        }
    }

    fn announce_passthrough(&mut self) {
        let mut set = TrackSet::new();
        if let Some((id, tracks)) = self.source_video.zip(self.source_tracks.as_ref())
            && let Some(v) = tracks.video(id.index)
        {
            let _ = set.insert(
                TrackId::new(TrackKind::Video, 0),
                TrackConfig::Video(v.clone()),
            );
        }
        self.add_source_audio(&mut set);
        if !set.is_empty() {
            self.set_tracks(set);
        }
    }

    fn add_source_audio(&self, set: &mut TrackSet) {
        if let Some((id, tracks)) = self.source_audio.zip(self.source_tracks.as_ref())
            && let Some(a) = tracks.audio(id.index)
        {
            let _ = set.insert(
                TrackId::new(TrackKind::Audio, 0),
                TrackConfig::Audio(a.clone()),
            );
        }
    }

    fn set_tracks(&mut self, set: TrackSet) {
        if self.announced.as_ref() == Some(&set) {
            return;
        }
        self.announced = Some(set.clone());
        if let Some(out) = self.publisher() {
            out.set_tracks(set);
        }
    }

    /// Releases audio the video has caught up with (or that waited too long).
    fn release_audio(&mut self) {
        let newest = self.audio.back().map(|f| f.dts);
        while let Some(front) = self.audio.front() {
            let caught_up = self.video_mark.is_some_and(|m| front.dts <= m);
            let too_old = newest.is_some_and(|n| n - front.dts > MAX_AUDIO_HOLD);
            if !(caught_up || too_old) || self.announced.is_none() {
                break;
            }
            let Some(frame) = self.audio.pop_front() else {
                break;
            };
            if let Some(out) = self.publisher() {
                out.push(frame);
            }
        }
        if self.announced.is_none() && self.audio.len() >= MAX_HELD_FRAMES {
            self.audio.pop_front();
        }
    }

    /// The source publisher left: the ladder drains, then the renditions' publisher
    /// leaves too.
    fn publisher_left(&mut self) {
        match std::mem::replace(&mut self.engine, Engine::Idle) {
            Engine::Running(_, ladder) => {
                ladder.finish();
                self.engine = Engine::Draining(ladder, Instant::now() + DRAIN_LIMIT);
            }
            _ => self.left(),
        }
    }

    /// A draining ladder gave up or ran out of time.
    fn drain_overdue(&mut self, now: Instant) {
        if let Engine::Draining(_, deadline) = &self.engine
            && now >= *deadline
        {
            self.left();
        }
    }

    /// Everything stops until the next publisher.
    fn left(&mut self) {
        // Audio the video did not catch up with goes out as it is.
        while let Some(f) = self.audio.pop_front() {
            if self.announced.is_some()
                && let Some(out) = self.out.as_mut()
            {
                out.push(f);
            }
        }
        self.stop_engine();
        self.audio.clear();
        self.announced = None;
        self.out = None; // the renditions' packagers see the publisher leave
    }

    fn publisher_joined(&mut self) {
        if matches!(self.engine, Engine::Draining(..)) {
            self.left();
        }
        self.engine = Engine::Idle;
        let _ = self.publisher();
        // The same tracks again are not re-announced by the bus: restart from the last.
        if let Some(tracks) = self.source_tracks.clone() {
            self.on_source_tracks(tracks);
        }
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            out.flush();
        }
    }
}

/// Runs the ladder of `stream` until its broadcast ends.
pub async fn run(stream: Arc<Stream>, job: LadderJob, registry: Arc<Registry>) {
    let LadderJob {
        mut source,
        renditions,
        config,
    } = job;
    let mut st = State {
        stream,
        registry,
        config,
        renditions,
        out: None,
        engine: Engine::Idle,
        notify: Arc::new(Event::new()),
        source_tracks: None,
        source_video: None,
        source_audio: None,
        rung_configs: Vec::new(),
        announced: None,
        waiting_source: Vec::new(),
        waiting_out: Vec::new(),
        audio: VecDeque::new(),
        video_mark: None,
        first_output: None,
        off_rungs: Vec::new(),
    };
    let _ = st.publisher();
    let mut events = Vec::new();
    loop {
        let listener = st.notify.listen();
        let closed = source.drain_into(&mut events).is_err();
        let mut ended = false;
        for event in events.drain(..) {
            match event {
                BusEvent::Tracks(tracks) => st.on_source_tracks(tracks),
                BusEvent::Frame(frame) => st.on_source_frame(frame),
                BusEvent::Skipped { frames } => {
                    tracing::warn!(channel = %st.stream.channel, frames, "ladder fell behind its source: frames skipped");
                }
                BusEvent::PublisherLeft => st.publisher_left(),
                BusEvent::PublisherJoined { .. } => st.publisher_joined(),
                BusEvent::Ended => ended = true,
            }
        }
        if let Engine::Starting(video) = &st.engine {
            let (video, config) = (video.clone(), st.config.clone());
            let v = video.clone();
            let ladder = crate::affinity::spawn_blocking(move || {
                Ladder::start(&config, &v).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err("the ladder's start panicked".to_owned()));
            st.started(&video, ladder);
            continue; // frames that came meanwhile are queued on the bus
        }
        st.drain_ladder();
        st.drain_overdue(Instant::now());
        st.release_audio();
        st.flush();
        if closed || ended {
            st.stop_engine();
            st.renditions.end();
            return;
        }
        let ready = pin!(source.ready());
        if let Engine::Draining(_, deadline) = &st.engine {
            let left = deadline.saturating_duration_since(Instant::now());
            let listener = pin!(listener);
            let woken = futures_util::future::select(ready, listener);
            let _ = compio::time::timeout(left, woken).await;
        } else {
            futures_util::future::select(ready, pin!(listener)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(name: &str, height: u16, video_kbps: u32, passthrough: bool) -> RungStatus {
        RungStatus {
            name: name.into(),
            width: height * 16 / 9,
            height,
            video_kbps,
            passthrough,
        }
    }

    #[test]
    fn a_report_marks_the_dropped_rungs_from_the_top_of_the_encoded_ones() {
        let status = LadderStatus {
            rungs: vec![
                rung("1080p", 1080, 0, true),
                rung("720p", 720, 3000, false),
                rung("480p", 480, 1200, false),
                rung("360p", 360, 700, false),
            ],
            encoder: Some("x264enc".into()),
            dropped_rungs: 2,
            failed: None,
        };
        let r = status.report();
        let dropped: Vec<_> = r
            .rungs
            .iter()
            .map(|r| (r.name.as_str(), r.dropped))
            .collect();
        assert_eq!(
            dropped,
            [
                ("1080p", false),
                ("720p", true),
                ("480p", true),
                ("360p", false)
            ]
        );
        assert_eq!((r.dropped_rungs, r.rungs[1].bitrate), (2, 3_000_000));
        assert_eq!(r.encoder.as_deref(), Some("x264enc"));
    }
}
