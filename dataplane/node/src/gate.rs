//! The track gate: holds frames until the broadcast's tracks are known.
//!
//! FLV announces each track's decoder config in its own tag, so the first frames can
//! arrive before the packager knows whether the broadcast has audio. The gate buffers
//! (boundedly) until both configs are in, or until [`GATE_MAX_WAIT`] of media has gone
//! by with only one, then releases the tracks and everything it held, in order.

use weir_bus::TrackSet;
use weir_media::{Frame, TIMESCALE, TrackConfig, TrackId, TrackKind};

/// Media time after which a broadcast with a single known track starts without the other.
pub const GATE_MAX_WAIT: i64 = TIMESCALE as i64; // one second
/// Frames held at most while waiting (beyond this the gate opens).
pub const GATE_MAX_FRAMES: usize = 512;

/// What the gate lets through.
#[derive(Debug, PartialEq, Eq)]
pub enum GateOutput {
    /// The broadcast's tracks (all of them, each time one is added or changes).
    Tracks(TrackSet),
    /// Publish this frame.
    Frame(Frame),
}

/// Publishes what came through a gate as one batch (one wake-up for subscribers).
pub fn publish(gated: &mut Vec<GateOutput>, publisher: &mut weir_bus::Publisher) {
    if gated.is_empty() {
        return;
    }
    for out in gated.drain(..) {
        match out {
            GateOutput::Tracks(tracks) => publisher.set_tracks(tracks),
            GateOutput::Frame(f) => publisher.push(f),
        }
    }
    publisher.flush();
}

/// Buffers frames until the track set is known.
#[derive(Debug, Default)]
pub struct TrackGate {
    tracks: TrackSet,
    open: bool,
    held: Vec<Frame>,
}

impl TrackGate {
    /// A closed gate with no tracks.
    pub fn new() -> Self {
        Self::default()
    }

    /// A track config arrived (an invalid one, e.g. a 33rd track, is logged and dropped).
    pub fn on_track(&mut self, id: TrackId, config: TrackConfig, out: &mut Vec<GateOutput>) {
        if let Err(e) = self.tracks.insert(id, config) {
            tracing::debug!(track = %id, error = %e, "track refused");
            return;
        }
        let has = |kind| self.tracks.iter().any(|(id, _)| id.kind == kind);
        if self.open {
            out.push(GateOutput::Tracks(self.tracks.clone()));
        } else if has(TrackKind::Video) && has(TrackKind::Audio) {
            self.release(out);
        }
    }

    /// A frame arrived.
    pub fn on_frame(&mut self, frame: Frame, out: &mut Vec<GateOutput>) {
        if self.open {
            out.push(GateOutput::Frame(frame));
            return;
        }
        self.held.push(frame);
        let span = match (self.held.first(), self.held.last()) {
            (Some(a), Some(b)) => b.dts - a.dts,
            _ => 0,
        };
        let have_one = !self.tracks.is_empty();
        if (have_one && span >= GATE_MAX_WAIT) || self.held.len() >= GATE_MAX_FRAMES {
            self.release(out);
        }
    }

    fn release(&mut self, out: &mut Vec<GateOutput>) {
        self.open = true;
        out.push(GateOutput::Tracks(self.tracks.clone()));
        let tracks = &self.tracks;
        out.extend(
            self.held
                .drain(..)
                .filter(|f| tracks.contains(f.track))
                .map(GateOutput::Frame),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use weir_media::{AudioConfig, Codec, VideoConfig};

    fn video() -> TrackConfig {
        TrackConfig::Video(VideoConfig {
            codec: Codec::H264,
            width: 2,
            height: 2,
            record: Bytes::new(),
        })
    }
    fn audio() -> TrackConfig {
        TrackConfig::Audio(AudioConfig {
            codec: Codec::Aac,
            sample_rate: 48_000,
            channels: 2,
            record: Bytes::new(),
        })
    }
    fn frame(track: TrackId, dts: i64) -> Frame {
        Frame {
            track,
            dts,
            pts: dts,
            keyframe: true,
            data: Bytes::new(),
        }
    }

    #[test]
    fn opens_when_both_tracks_are_known_and_keeps_order() {
        let mut g = TrackGate::new();
        let mut out = Vec::new();
        g.on_track(TrackId::VIDEO, video(), &mut out);
        g.on_frame(frame(TrackId::VIDEO, 0), &mut out);
        assert!(out.is_empty());
        g.on_track(TrackId::AUDIO, audio(), &mut out);
        assert!(matches!(&out[0], GateOutput::Tracks(t) if t.len() == 2));
        assert_eq!(out.len(), 2);
        out.clear();
        g.on_frame(frame(TrackId::AUDIO, 10), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn video_only_opens_after_a_second() {
        let mut g = TrackGate::new();
        let mut out = Vec::new();
        g.on_track(TrackId::VIDEO, video(), &mut out);
        for i in 0..30 {
            g.on_frame(frame(TrackId::VIDEO, i * 3000), &mut out);
        }
        assert!(out.is_empty());
        g.on_frame(frame(TrackId::VIDEO, 90_000), &mut out);
        assert!(
            matches!(&out[0], GateOutput::Tracks(t) if t.video(0).is_some() && t.audio(0).is_none())
        );
        assert_eq!(out.len(), 32);
    }

    #[test]
    fn frames_without_any_config_are_bounded() {
        let mut g = TrackGate::new();
        let mut out = Vec::new();
        for i in 0..GATE_MAX_FRAMES as i64 {
            g.on_frame(frame(TrackId::VIDEO, i), &mut out);
        }
        assert!(matches!(&out[0], GateOutput::Tracks(t) if t.is_empty()));
        assert_eq!(out.len(), 1, "frames of unknown tracks are dropped");
    }

    #[test]
    fn multitrack_renditions_are_separate_tracks() {
        let mut g = TrackGate::new();
        let mut out = Vec::new();
        let low = TrackId::new(TrackKind::Video, 1);
        g.on_track(TrackId::VIDEO, video(), &mut out);
        g.on_track(low, video(), &mut out);
        g.on_frame(frame(low, 0), &mut out);
        g.on_track(TrackId::AUDIO, audio(), &mut out);
        assert!(matches!(&out[0], GateOutput::Tracks(t) if t.len() == 3 && t.contains(low)));
        assert!(matches!(&out[1], GateOutput::Frame(f) if f.track == low));
        // A track announced after the gate opened comes as a new, complete set.
        out.clear();
        g.on_track(TrackId::new(TrackKind::Audio, 1), audio(), &mut out);
        assert!(matches!(&out[0], GateOutput::Tracks(t) if t.len() == 4));
    }
}
