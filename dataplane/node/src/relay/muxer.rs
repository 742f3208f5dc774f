//! A broadcast's bus events → the RTMP media messages one destination gets (sans-IO).
//!
//! The relay sends the broadcast's primary video track and its first audio track:
//! `onMetaData` and sequence headers first, then frames from a video key frame on,
//! with timestamps in milliseconds from the first frame sent on this connection. When
//! the publisher comes back (its clock restarts) the destination's timeline goes on
//! where it was, so the destination sees one continuous stream; a changed track
//! configuration sends a new sequence header.

use std::rc::Rc;

use bytes::Bytes;
use weir_bus::{BusEvent, TrackSet};
use weir_flv::mux;
use weir_media::{AudioConfig, Frame, TIMESCALE, TrackId, TrackKind, VideoConfig};
use weir_rtmp::amf0::{self, Amf0Value};
use weir_rtmp::{MediaKind, SharedBody};

use super::bodies::FrameBodies;

/// One RTMP media message.
#[derive(Debug, Clone)]
pub struct MediaMessage {
    /// Audio, video or data (AMF0).
    pub kind: MediaKind,
    /// RTMP timestamp (ms, wraps at 2^32).
    pub timestamp_ms: u32,
    /// FLV tag body or AMF0 body (a frame's is shared by the broadcast's relays).
    pub payload: SharedBody,
}

/// Ticks between two frames assumed when the timeline is continued after a gap.
const CONTINUE_GAP_TICKS: i64 = TIMESCALE as i64 / 30;

/// The per-destination muxer.
#[derive(Debug, Default)]
pub struct RelayMuxer {
    video: Option<(TrackId, VideoConfig)>,
    audio: Option<(TrackId, AudioConfig)>,
    /// Configurations the destination has (sequence headers sent).
    sent_video: Option<VideoConfig>,
    sent_audio: Option<AudioConfig>,
    metadata_sent: bool,
    /// Bus ticks that map to timestamp 0 of this connection.
    base: Option<i64>,
    /// The publisher came back: the next frame re-anchors the timeline after `last`.
    rebase: bool,
    /// Last timestamp sent per kind (video, audio), in ticks of this connection's
    /// timeline: each stays monotonic.
    last: [i64; 2],
    /// Frames are held until a video key frame (the broadcast has video).
    need_keyframe: bool,
    /// Frames not sent because their codec has no FLV form.
    pub unsendable: u64,
    /// Frame bodies, shared with the broadcast's other relays on this shard.
    bodies: Rc<FrameBodies>,
}

impl RelayMuxer {
    /// A muxer for a new connection to the destination, with bodies of its own.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::sharing(FrameBodies::new())
    }

    /// A muxer that takes frame bodies from, and leaves them in, `bodies` (shared by
    /// the relays of one broadcast).
    pub fn sharing(bodies: Rc<FrameBodies>) -> Self {
        Self {
            need_keyframe: true,
            bodies,
            ..Self::default()
        }
    }

    /// Feeds one bus event; the messages to send go to `out`.
    pub fn handle_event(&mut self, event: &BusEvent, out: &mut Vec<MediaMessage>) {
        match event {
            BusEvent::Tracks(tracks) => self.on_tracks(tracks),
            BusEvent::Frame(f) => self.on_frame(f, out),
            BusEvent::Skipped { .. } => {
                // The bus resumes each video track at a key frame; audio goes on.
            }
            BusEvent::PublisherJoined { resumed: true } => {
                self.rebase = true;
                self.need_keyframe = self.video.is_some();
            }
            BusEvent::PublisherJoined { .. } | BusEvent::PublisherLeft | BusEvent::Ended => {}
        }
    }

    /// What an orderly end sends: end of the video sequence.
    pub fn finish(&self) -> Option<MediaMessage> {
        let v = self.sent_video.as_ref()?;
        let payload = mux::video_sequence_end(v.codec).ok()?;
        Some(MediaMessage {
            kind: MediaKind::Video,
            timestamp_ms: self.timestamp_ms(self.last[0].max(self.last[1])),
            payload: payload.into(),
        })
    }

    fn on_tracks(&mut self, tracks: &TrackSet) {
        self.video = tracks
            .primary_video()
            .and_then(|id| tracks.video(id.index).map(|c| (id, c.clone())));
        self.audio = tracks
            .first(TrackKind::Audio)
            .and_then(|id| tracks.audio(id.index).map(|c| (id, c.clone())));
        if self.video.is_none() {
            self.need_keyframe = false;
        }
    }

    fn timestamp_ms(&self, ticks: i64) -> u32 {
        (ticks.max(0) * 1000 / i64::from(TIMESCALE)) as u32
    }

    fn on_frame(&mut self, f: &Frame, out: &mut Vec<MediaMessage>) {
        let is_video = self.video.as_ref().is_some_and(|(id, _)| *id == f.track);
        let is_audio = self.audio.as_ref().is_some_and(|(id, _)| *id == f.track);
        if !(is_video || is_audio) {
            return;
        }
        if self.need_keyframe {
            if !(is_video && f.keyframe) {
                return;
            }
            self.need_keyframe = false;
        }
        let base = match self.base {
            Some(b) if !self.rebase => b,
            Some(_) => {
                // Continue after the last timestamp sent, whatever the new clock says.
                let b = f.dts - (self.last[0].max(self.last[1]) + CONTINUE_GAP_TICKS);
                self.rebase = false;
                self.base = Some(b);
                b
            }
            None => {
                self.base = Some(f.dts);
                f.dts
            }
        };
        let slot = usize::from(!is_video);
        let t = (f.dts - base).max(self.last[slot]);
        self.last[slot] = t;
        let ts = self.timestamp_ms(t);
        if !self.metadata_sent {
            self.metadata_sent = true;
            out.push(self.metadata(ts));
        }
        if is_video {
            let Some((_, config)) = &self.video else {
                return;
            };
            if self.sent_video.as_ref() != Some(config) {
                match mux::video_sequence_start(config) {
                    Ok(p) => out.push(MediaMessage {
                        kind: MediaKind::Video,
                        timestamp_ms: ts,
                        payload: p.into(),
                    }),
                    Err(_) => {
                        self.unsendable += 1;
                        return;
                    }
                }
                self.sent_video = Some(config.clone());
            }
            match self.bodies.video(config.codec, f) {
                Ok(payload) => out.push(MediaMessage {
                    kind: MediaKind::Video,
                    timestamp_ms: ts,
                    payload,
                }),
                Err(_) => self.unsendable += 1,
            }
        } else {
            let Some((_, config)) = &self.audio else {
                return;
            };
            if self.sent_audio.as_ref() != Some(config) {
                match mux::audio_sequence_start(config) {
                    Ok(p) => out.push(MediaMessage {
                        kind: MediaKind::Audio,
                        timestamp_ms: ts,
                        payload: p.into(),
                    }),
                    Err(_) => {
                        self.unsendable += 1;
                        return;
                    }
                }
                self.sent_audio = Some(config.clone());
            }
            match self.bodies.audio(config.codec, f) {
                Ok(payload) => out.push(MediaMessage {
                    kind: MediaKind::Audio,
                    timestamp_ms: ts,
                    payload,
                }),
                Err(_) => self.unsendable += 1,
            }
        }
    }

    /// `@setDataFrame onMetaData` describing the tracks (players and platforms read it).
    fn metadata(&self, ts: u32) -> MediaMessage {
        let mut fields = vec![("encoder", Amf0Value::string("weir relay"))];
        if let Some((_, v)) = &self.video {
            fields.push(("width", Amf0Value::Number(f64::from(v.width))));
            fields.push(("height", Amf0Value::Number(f64::from(v.height))));
            fields.push((
                "videocodecid",
                Amf0Value::Number(mux::metadata_codec_id(v.codec)),
            ));
        }
        if let Some((_, a)) = &self.audio {
            fields.push((
                "audiocodecid",
                Amf0Value::Number(mux::metadata_codec_id(a.codec)),
            ));
            fields.push((
                "audiosamplerate",
                Amf0Value::Number(f64::from(a.sample_rate)),
            ));
            fields.push(("stereo", Amf0Value::Boolean(a.channels >= 2)));
        }
        let body = amf0::encode_all(&[
            Amf0Value::string("@setDataFrame"),
            Amf0Value::string("onMetaData"),
            Amf0Value::object(fields),
        ]);
        MediaMessage {
            kind: MediaKind::Data,
            timestamp_ms: ts,
            payload: Bytes::from(body).into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use weir_flv::video::{VideoPacket, parse_video};
    use weir_media::{Codec, TrackConfig};

    fn tracks() -> Arc<TrackSet> {
        let mut set = TrackSet::new();
        set.insert(
            TrackId::VIDEO,
            TrackConfig::Video(VideoConfig {
                codec: Codec::H264,
                width: 640,
                height: 360,
                record: Bytes::from_static(&[1, 0x64, 0, 0x1f]),
            }),
        )
        .unwrap();
        set.insert(
            TrackId::AUDIO,
            TrackConfig::Audio(AudioConfig {
                codec: Codec::Aac,
                sample_rate: 48_000,
                channels: 2,
                record: Bytes::from_static(&[0x11, 0x90]),
            }),
        )
        .unwrap();
        Arc::new(set)
    }

    fn frame(track: TrackId, dts: i64, keyframe: bool) -> BusEvent {
        BusEvent::Frame(Frame {
            track,
            dts,
            pts: dts,
            keyframe,
            data: Bytes::from_static(b"\0\0\0\x01\x65"),
        })
    }

    fn kinds(out: &[MediaMessage]) -> Vec<(MediaKind, u32)> {
        out.iter().map(|m| (m.kind, m.timestamp_ms)).collect()
    }

    #[test]
    fn starts_at_a_key_frame_with_metadata_and_sequence_headers() {
        let mut m = RelayMuxer::new();
        let mut out = Vec::new();
        m.handle_event(&BusEvent::Tracks(tracks()), &mut out);
        // Audio and an inter frame before the first key frame are not sent.
        m.handle_event(&frame(TrackId::AUDIO, 900_000, true), &mut out);
        m.handle_event(&frame(TrackId::VIDEO, 903_000, false), &mut out);
        assert!(out.is_empty());
        m.handle_event(&frame(TrackId::VIDEO, 906_000, true), &mut out);
        m.handle_event(&frame(TrackId::AUDIO, 907_920, true), &mut out);
        m.handle_event(&frame(TrackId::VIDEO, 909_000, false), &mut out);
        assert_eq!(
            kinds(&out),
            [
                (MediaKind::Data, 0),
                (MediaKind::Video, 0),
                (MediaKind::Video, 0),
                (MediaKind::Audio, 21),
                (MediaKind::Audio, 21),
                (MediaKind::Video, 33)
            ]
        );
        let seq = parse_video(out[1].payload.payload()).unwrap();
        assert!(matches!(
            seq.tracks[0].packet,
            VideoPacket::SequenceStart(_)
        ));
        let key = parse_video(out[2].payload.payload()).unwrap();
        assert!(key.is_keyframe());
    }

    #[test]
    fn a_returning_publisher_continues_the_timeline() {
        let mut m = RelayMuxer::new();
        let mut out = Vec::new();
        m.handle_event(&BusEvent::Tracks(tracks()), &mut out);
        for i in 0..30 {
            m.handle_event(&frame(TrackId::VIDEO, 900_000 + i * 3000, i == 0), &mut out);
        }
        let last = out.last().unwrap().timestamp_ms;
        out.clear();
        m.handle_event(&BusEvent::PublisherLeft, &mut out);
        m.handle_event(&BusEvent::PublisherJoined { resumed: true }, &mut out);
        // The new clock starts lower; frames wait for a key frame again.
        m.handle_event(&frame(TrackId::VIDEO, 10_000, false), &mut out);
        assert!(out.is_empty());
        m.handle_event(&frame(TrackId::VIDEO, 13_000, true), &mut out);
        m.handle_event(&frame(TrackId::VIDEO, 16_000, false), &mut out);
        let ts: Vec<u32> = out.iter().map(|m| m.timestamp_ms).collect();
        // The last frame was at 29 × 3000 ticks (966 ms): one frame later, then the next.
        assert_eq!((last, ts), (966, vec![1000, 1033]));
        // An orderly end closes the video sequence.
        let end = m.finish().unwrap();
        assert_eq!(
            parse_video(end.payload.payload()).unwrap().tracks[0].packet,
            VideoPacket::SequenceEnd
        );
    }

    #[test]
    fn a_new_configuration_sends_a_new_sequence_header() {
        let mut m = RelayMuxer::new();
        let mut out = Vec::new();
        m.handle_event(&BusEvent::Tracks(tracks()), &mut out);
        m.handle_event(&frame(TrackId::VIDEO, 0, true), &mut out);
        let mut set = (*tracks()).clone();
        set.insert(
            TrackId::VIDEO,
            TrackConfig::Video(VideoConfig {
                codec: Codec::H264,
                width: 1280,
                height: 720,
                record: Bytes::from_static(&[1, 0x64, 0, 0x20]),
            }),
        )
        .unwrap();
        out.clear();
        m.handle_event(&BusEvent::Tracks(Arc::new(set)), &mut out);
        m.handle_event(&frame(TrackId::VIDEO, 3000, true), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(
            parse_video(out[0].payload.payload()).unwrap().tracks[0].packet,
            VideoPacket::SequenceStart(_)
        ));
    }
}
