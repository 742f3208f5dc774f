//! The track gate: holds frames until the broadcast's tracks are known.
//!
//! FLV announces each track's decoder config in its own tag, so the first frames can
//! arrive before the packager knows whether the broadcast has audio. The gate buffers
//! (boundedly) until both configs are in, or until [`GATE_MAX_WAIT`] of media has gone
//! by with only one, then releases the tracks and everything it held, in order.

use weir_media::{AudioConfig, Frame, TIMESCALE, TrackConfig, VideoConfig};

/// Media time after which a broadcast with a single known track starts without the other.
pub const GATE_MAX_WAIT: i64 = TIMESCALE as i64; // one second
/// Frames held at most while waiting (beyond this the gate opens).
pub const GATE_MAX_FRAMES: usize = 512;

/// What the gate lets through.
#[derive(Debug, PartialEq, Eq)]
pub enum GateOutput {
    /// (Re)configure the packager with these tracks.
    Tracks(Option<VideoConfig>, Option<AudioConfig>),
    /// Package this frame.
    Frame(Frame),
}

/// Buffers frames until the track set is known.
#[derive(Debug, Default)]
pub struct TrackGate {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    open: bool,
    held: Vec<Frame>,
}

impl TrackGate {
    /// A closed gate with no tracks.
    pub fn new() -> Self {
        Self::default()
    }

    /// A track config arrived.
    pub fn on_track(&mut self, track: TrackConfig, out: &mut Vec<GateOutput>) {
        match track {
            TrackConfig::Video(v) => self.video = Some(v),
            TrackConfig::Audio(a) => self.audio = Some(a),
        }
        if self.open {
            out.push(GateOutput::Tracks(self.video.clone(), self.audio.clone()));
        } else if self.video.is_some() && self.audio.is_some() {
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
        let have_one = self.video.is_some() || self.audio.is_some();
        if (have_one && span >= GATE_MAX_WAIT) || self.held.len() >= GATE_MAX_FRAMES {
            self.release(out);
        }
    }

    fn release(&mut self, out: &mut Vec<GateOutput>) {
        self.open = true;
        out.push(GateOutput::Tracks(self.video.clone(), self.audio.clone()));
        let has_video = self.video.is_some();
        let has_audio = self.audio.is_some();
        out.extend(
            self.held
                .drain(..)
                .filter(|f| match f.track {
                    weir_media::TrackKind::Video => has_video,
                    weir_media::TrackKind::Audio => has_audio,
                })
                .map(GateOutput::Frame),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use weir_media::{Codec, TrackKind};

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
    fn frame(track: TrackKind, dts: i64) -> Frame {
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
        g.on_track(video(), &mut out);
        g.on_frame(frame(TrackKind::Video, 0), &mut out);
        assert!(out.is_empty());
        g.on_track(audio(), &mut out);
        assert!(matches!(out[0], GateOutput::Tracks(Some(_), Some(_))));
        assert_eq!(out.len(), 2);
        out.clear();
        g.on_frame(frame(TrackKind::Audio, 10), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn video_only_opens_after_a_second() {
        let mut g = TrackGate::new();
        let mut out = Vec::new();
        g.on_track(video(), &mut out);
        for i in 0..30 {
            g.on_frame(frame(TrackKind::Video, i * 3000), &mut out);
        }
        assert!(out.is_empty());
        g.on_frame(frame(TrackKind::Video, 90_000), &mut out);
        assert!(matches!(out[0], GateOutput::Tracks(Some(_), None)));
        assert_eq!(out.len(), 32);
    }

    #[test]
    fn frames_without_any_config_are_bounded() {
        let mut g = TrackGate::new();
        let mut out = Vec::new();
        for i in 0..GATE_MAX_FRAMES as i64 {
            g.on_frame(frame(TrackKind::Video, i), &mut out);
        }
        assert!(matches!(out[0], GateOutput::Tracks(None, None)));
        assert_eq!(out.len(), 1, "frames of unknown tracks are dropped");
    }
}
