//! The LL-HLS packager as a bus subscriber: bus events in, snapshots out.
//!
//! One task per broadcast, on the shard that created it. It owns the broadcast's
//! [`LiveStream`] (no lock: nothing else touches it), feeds it the default video and
//! audio tracks, and after each batch of events publishes the new snapshot, if any, to
//! the stream's [`crate::delivery::HlsDelivery`], which wakes the viewers it satisfies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use weir_bus::{BusEvent, TrackSet};
use weir_media::{TrackId, TrackKind};

use crate::hooks::RenditionInfo;
use crate::registry::{Packaging, Registry, Stream, wallclock_ms};

/// Which bus tracks the packager serves (the lowest-index video and audio tracks), as
/// they appear on the bus.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Selected {
    video: Option<TrackId>,
    audio: Option<TrackId>,
}

impl Selected {
    fn of(tracks: &TrackSet) -> Self {
        Self {
            video: tracks.first(TrackKind::Video),
            audio: tracks.first(TrackKind::Audio),
        }
    }

    /// The packager's track for a bus track, if it is served.
    fn map(self, track: TrackId) -> Option<TrackId> {
        if Some(track) == self.video {
            Some(TrackId::VIDEO)
        } else if Some(track) == self.audio {
            Some(TrackId::AUDIO)
        } else {
            None
        }
    }
}

/// Runs the packager of `stream` until its broadcast ends.
pub async fn run(stream: Arc<Stream>, packaging: Packaging, registry: Arc<Registry>) {
    let Packaging {
        mut hls,
        mut subscriber,
        ladder,
    } = packaging;
    if let Some(job) = ladder {
        compio::runtime::spawn(crate::ladder_task::run(
            stream.clone(),
            job,
            registry.clone(),
        ))
        .detach();
        let config = hls.config().clone();
        drop(hls);
        return crate::renditions_task::run(stream, config, subscriber, Some(registry)).await;
    }
    let mut selected = Selected::default();
    let mut live_reported = false;
    let mut events = Vec::new();
    let mut published = hls.snapshot();
    loop {
        subscriber.ready().await;
        let closed = subscriber.drain_into(&mut events).is_err();
        for event in events.drain(..) {
            if let BusEvent::Tracks(tracks) = &event
                && !live_reported
            {
                live_reported = true;
                report_live(&stream, &registry, tracks);
            }
            if let BusEvent::Frame(frame) = &event
                && frame.track.is_video()
                && frame.composition_offset() != 0
            {
                stream.video_reorders.store(true, Ordering::Relaxed);
            }
            if let BusEvent::Skipped { frames } = &event {
                tracing::warn!(channel = %stream.channel, frames, "packager fell behind: frames skipped");
            }
            apply(&mut selected, &mut hls, event);
        }
        if closed && !hls.is_ended() {
            hls.end();
        }
        let snapshot = hls.snapshot();
        if !Arc::ptr_eq(&snapshot, &published) {
            published = snapshot.clone();
            stream.hls.publish(snapshot);
        }
        if closed || hls.is_ended() {
            return;
        }
    }
}

/// One bus event into the packager: tracks select the served ones, frames of those are
/// pushed (renumbered to the packager's tracks), the publisher leaving pauses, the end
/// ends. The whole of what the packager does with the bus, shared with the fuzz target.
pub(crate) fn apply(selected: &mut Selected, hls: &mut weir_hls::LiveStream, event: BusEvent) {
    match event {
        BusEvent::Tracks(tracks) => {
            *selected = Selected::of(&tracks);
            let video = selected
                .video
                .and_then(|id| tracks.video(id.index))
                .cloned();
            let audio = selected
                .audio
                .and_then(|id| tracks.audio(id.index))
                .cloned();
            hls.set_tracks(video, audio);
        }
        BusEvent::Frame(mut frame) => {
            if let Some(track) = selected.map(frame.track) {
                frame.track = track;
                hls.push_frame(wallclock_ms(), frame);
            }
        }
        BusEvent::PublisherLeft => hls.pause(),
        BusEvent::Ended => hls.end(),
        BusEvent::Skipped { .. } | BusEvent::PublisherJoined { .. } => {}
    }
}

/// The broadcast's tracks are known: it is live, as one rendition (the source).
pub(crate) fn report_live(stream: &Stream, registry: &Registry, tracks: &TrackSet) {
    let codecs: Vec<String> = tracks.iter().map(|(_, c)| c.codec_string()).collect();
    let (width, height) = tracks
        .primary_video()
        .and_then(|id| tracks.video(id.index))
        .map_or((0, 0), |v| (v.width.into(), v.height.into()));
    let source = RenditionInfo {
        name: "source".to_owned(),
        codecs: codecs.join(","),
        width,
        height,
        bitrate: 0,
    };
    registry.events().stream_live(&stream.info, vec![source]);
}
