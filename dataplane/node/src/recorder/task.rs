//! The recorder of one broadcast: a bus subscriber on the shard that admitted it.
//!
//! It owns a [`LiveStream`] of its own (the same CMAF packaging as the live playlist,
//! with whole-segment parts), feeds it the broadcast's primary video and first audio
//! track, and hands every segment the moment it is complete, and every new init segment,
//! to the writer thread. Nothing here touches the disk or waits for it.

use std::collections::HashSet;
use std::sync::Arc;

use weir_bus::{BusEvent, Subscriber, TrackSet};
use weir_hls::{LiveStream, ObjectAnswer};
use weir_media::{TrackId, TrackKind};

use super::Recorder;
use super::index::{Header, SegmentEntry};
use super::writer::Job;
use crate::hooks::RecordingStart;
use crate::registry::{Stream, wallclock_ms};

/// Drops are logged at most this often.
const DROP_LOG_EVERY_MS: u64 = 1000;

struct Task {
    rec: Arc<Recorder>,
    stream: Arc<Stream>,
    hls: LiveStream,
    id: Option<String>,
    video: Option<TrackId>,
    audio: Option<TrackId>,
    /// Next segment number to hand to the writer.
    next_msn: u64,
    inits_sent: HashSet<u64>,
    media_bytes: u64,
    dropped: u64,
    last_drop_log: u64,
}

/// Records `stream` until its broadcast ends.
pub async fn run(rec: Arc<Recorder>, stream: Arc<Stream>, mut subscriber: Subscriber) {
    let hls = LiveStream::new(rec.hls.clone());
    let mut t = Task {
        rec,
        stream,
        hls,
        id: None,
        video: None,
        audio: None,
        next_msn: 0,
        inits_sent: HashSet::new(),
        media_bytes: 0,
        dropped: 0,
        last_drop_log: 0,
    };
    let mut events = Vec::new();
    loop {
        subscriber.ready().await;
        let closed = subscriber.drain_into(&mut events).is_err();
        for event in events.drain(..) {
            t.on_event(event);
        }
        if closed && !t.hls.is_ended() {
            t.hls.end();
        }
        t.hand_over();
        if closed || t.hls.is_ended() {
            t.finish();
            return;
        }
    }
}

impl Task {
    fn on_event(&mut self, event: BusEvent) {
        match event {
            BusEvent::Tracks(tracks) => self.set_tracks(&tracks),
            BusEvent::Frame(mut frame) => {
                let track = if Some(frame.track) == self.video {
                    TrackId::VIDEO
                } else if Some(frame.track) == self.audio {
                    TrackId::AUDIO
                } else {
                    return;
                };
                frame.track = track;
                self.media_bytes += frame.data.len() as u64;
                self.hls.push_frame(wallclock_ms(), frame);
            }
            BusEvent::Skipped { frames } => {
                metrics::counter!("weir_recording_frames_skipped_total").increment(frames);
                tracing::warn!(channel = %self.stream.channel, frames, "recorder fell behind the bus: frames skipped");
            }
            BusEvent::PublisherLeft => self.hls.pause(),
            BusEvent::PublisherJoined { .. } => {}
            BusEvent::Ended => self.hls.end(),
        }
    }

    fn set_tracks(&mut self, tracks: &TrackSet) {
        self.video = tracks.primary_video().or(tracks.first(TrackKind::Video));
        self.audio = tracks.first(TrackKind::Audio);
        let video = self.video.and_then(|id| tracks.video(id.index)).cloned();
        let audio = self.audio.and_then(|id| tracks.audio(id.index)).cloned();
        if video.is_none() && audio.is_none() {
            return;
        }
        self.hls.set_tracks(video, audio);
        if self.id.is_none() {
            self.open();
        }
    }

    /// The recording begins: its id, directory and index.
    fn open(&mut self) {
        let Some(id) = super::new_id() else {
            tracing::warn!(channel = %self.stream.channel, "no randomness for a recording id: not recorded");
            return;
        };
        let info = &self.stream.info;
        let header = Header {
            id: id.clone(),
            channel_id: safe_or(&info.channel_id, "-"),
            broadcast_id: safe_or(&info.broadcast_id, "-"),
            started_ms: wallclock_ms(),
            target_secs: self.hls.config().target_duration_secs(),
            // A channel name that cannot be written in the index still closes the
            // recording: no token is made for "-".
            signed: self
                .stream
                .signed_playback
                .load(std::sync::atomic::Ordering::Relaxed)
                .then(|| safe_or(&self.stream.channel, "-")),
        };
        self.rec.writer.send(Job::Open(header));
        let start = RecordingStart {
            path: self.rec.root.join(&id).display().to_string(),
            playback_path: super::playback_path(&id),
            recording_id: id.clone(),
        };
        self.rec.events.recording_started(info, &start);
        self.id = Some(id);
    }

    /// Hands every newly complete segment (and the init segments it needs) to the writer.
    fn hand_over(&mut self) {
        let Some(id) = self.id.clone() else {
            return;
        };
        let snapshot = self.hls.snapshot();
        if let Some(first) = snapshot.first_complete()
            && first > self.next_msn
        {
            // Evicted from the window before this task ran (cannot happen with a window
            // of several segments per batch, but never loop on it).
            self.drop_segments(first - self.next_msn);
            self.next_msn = first;
        }
        while let Some(seg) = snapshot.complete_segment(self.next_msn) {
            self.next_msn += 1;
            if !self.inits_sent.contains(&seg.init)
                && let ObjectAnswer::Ready(init, _) =
                    snapshot.object(&format!("init-{}.mp4", seg.init))
            {
                let data = init.to_bytes();
                let len = data.len();
                let job = Job::Init {
                    id: id.clone(),
                    n: seg.init,
                    data,
                };
                if self.rec.writer.send_media(job, len) {
                    self.inits_sent.insert(seg.init);
                } else {
                    self.drop_segments(1);
                    continue; // without its init segment it cannot be played
                }
            }
            let entry = SegmentEntry {
                msn: seg.msn,
                duration_us: seg.duration.as_micros() as u64,
                bytes: seg.data.len() as u64,
                start: seg.start,
                timescale: seg.timescale,
                wallclock_ms: seg.wallclock_ms,
                init: seg.init,
                discontinuity: seg.discontinuity,
                gap: seg.gap,
                independent: seg.independent,
            };
            let len = seg.data.len();
            let job = Job::Segment {
                id: id.clone(),
                entry,
                data: seg.data,
            };
            if !self.rec.writer.send_media(job, len) {
                self.drop_segments(1);
            }
        }
    }

    fn drop_segments(&mut self, n: u64) {
        self.dropped += n;
        metrics::counter!("weir_recording_segments_dropped_total").increment(n);
        let now = wallclock_ms();
        if now.saturating_sub(self.last_drop_log) >= DROP_LOG_EVERY_MS {
            self.last_drop_log = now;
            tracing::warn!(
                channel = %self.stream.channel,
                recording = self.id.as_deref().unwrap_or(""),
                dropped = self.dropped,
                queue_limit = self.rec.writer.queue_limit(),
                "recording: the disk is too slow, segments dropped"
            );
        }
    }

    fn finish(&mut self) {
        if let Some(id) = self.id.take() {
            self.rec.writer.send(Job::Finish {
                id,
                ended_ms: wallclock_ms(),
                media_bytes: self.media_bytes,
            });
        }
    }
}

fn safe_or(s: &str, or: &str) -> String {
    if super::index::is_safe_word(s) {
        s.to_owned()
    } else {
        or.to_owned()
    }
}
