//! WHIP ingest: a browser (or OBS, or ffmpeg) sends H.264 and Opus; the session hands
//! out bus tracks and frames.
//!
//! Each simulcast layer is its own video track (`f`/`h`/`q`, or `high`/`mid`/`low`, map
//! to indices 0/1/2; other rids take the order of the offer), so renditions reach the
//! bus as separate tracks exactly like Enhanced RTMP multitrack. H.264 arrives as Annex B
//! and leaves as AVCC with its parameter sets in the track's record; frames that cannot
//! be decoded (before the first key frame, after a loss) are held back and a key frame is
//! requested (PLI), at most every [`KEYFRAME_REQUEST_EVERY`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::format::Codec as RtpCodec;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, Mid, Rid};
use str0m::{Event, RtcConfig};
use weir_media::{AudioConfig, Codec, Frame, TrackConfig, TrackId, TrackKind, VideoConfig};

use crate::WebrtcError;
use crate::clock::{SessionClock, TrackClock};
use crate::h264::AvcAssembler;
use crate::session::{Datagram, RtcCore, RtcSettings};

/// Shortest time between two key frame requests for one layer.
pub const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(500);
/// Most video layers (simulcast) taken from one publisher.
pub const MAX_LAYERS: usize = 4;

/// What an ingest session produced for the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestEvent {
    /// ICE and DTLS are up: media will follow.
    Connected,
    /// A track's configuration (first, or changed).
    Track(TrackId, TrackConfig),
    /// A frame.
    Frame(Frame),
}

struct VideoLayer {
    mid: Mid,
    rid: Option<Rid>,
    track: TrackId,
    assembler: AvcAssembler,
    clock: TrackClock,
    configured: bool,
    need_keyframe: bool,
    last_request: Option<Instant>,
}

struct AudioTrack {
    track: TrackId,
    clock: TrackClock,
}

/// A WHIP publisher's peer connection.
pub struct WhipSession {
    core: RtcCore,
    clock: SessionClock,
    rid_order: HashMap<Mid, Vec<Rid>>,
    video: Vec<VideoLayer>,
    audio: HashMap<Mid, AudioTrack>,
    events: VecDeque<IngestEvent>,
}

impl WhipSession {
    /// Answers a WHIP offer: returns the session and the SDP answer.
    pub fn accept(
        now: Instant,
        settings: &RtcSettings,
        offer: &str,
    ) -> Result<(Self, String), WebrtcError> {
        let configure = |c: RtcConfig| {
            c.enable_h264(true)
                .enable_opus(true, false)
                .enable_bwe(None)
        };
        let (core, answer) = RtcCore::accept(now, settings, offer, configure)?;
        let mut s = Self {
            core,
            clock: SessionClock::new(now),
            rid_order: HashMap::new(),
            video: Vec::new(),
            audio: HashMap::new(),
            events: VecDeque::new(),
        };
        let mut usable = 0;
        for m in s.core.negotiated_media(offer) {
            if matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) {
                usable += 1;
            }
            if !m.rids.is_empty() {
                s.rid_order.insert(m.mid, m.rids);
            }
        }
        if usable == 0 {
            return Err(WebrtcError::NoUsableMedia(
                "offer H.264 (packetization-mode=1) video and/or Opus audio, sendonly".into(),
            ));
        }
        Ok((s, answer))
    }

    /// Our ICE ufrag (STUN binding requests carrying it belong to this session).
    pub fn ufrag(&self) -> &str {
        self.core.ufrag()
    }

    /// When [`WhipSession::handle_timeout`] is next due.
    pub fn timeout(&self) -> Instant {
        self.core.timeout()
    }

    /// Why the session ended, once it has.
    pub fn failure(&self) -> Option<&WebrtcError> {
        self.core.failure()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.core.poll_transmit()
    }

    /// The next event for the bus.
    pub fn poll_event(&mut self) -> Option<IngestEvent> {
        self.events.pop_front()
    }

    /// A datagram for this session arrived.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let events = self
            .core
            .handle_datagram(now, source, destination, contents);
        self.on_events(now, events);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let events = self.core.handle_timeout(now);
        self.on_events(now, events);
    }

    /// Ends the session.
    pub fn close(&mut self) {
        self.core.close();
    }

    /// An output needs a key frame of `track` (a viewer joined or lost packets).
    pub fn request_keyframe(&mut self, now: Instant, track: TrackId) {
        if let Some(i) = self.video.iter().position(|l| l.track == track) {
            self.send_keyframe_request(now, i);
        }
    }

    fn on_events(&mut self, now: Instant, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Connected => self.events.push_back(IngestEvent::Connected),
                Event::MediaData(data) => self.on_media(now, data),
                _ => {}
            }
        }
    }

    fn on_media(&mut self, now: Instant, data: MediaData) {
        let arrival = self.clock.arrival_ticks(data.network_time);
        let spec = data.params.spec();
        match spec.codec {
            RtpCodec::H264 => self.on_video(now, arrival, data),
            RtpCodec::Opus => {
                let next = TrackId::new(TrackKind::Audio, self.audio.len().min(15) as u8);
                let events = &mut self.events;
                let track = self.audio.entry(data.mid).or_insert_with(|| {
                    events.push_back(IngestEvent::Track(
                        next,
                        TrackConfig::Audio(AudioConfig {
                            codec: Codec::Opus,
                            sample_rate: 48_000,
                            channels: 2,
                            record: Bytes::new(),
                        }),
                    ));
                    AudioTrack {
                        track: next,
                        clock: TrackClock::new(),
                    }
                });
                let t = track
                    .clock
                    .map(data.time.numer(), data.time.denom(), arrival);
                self.events.push_back(IngestEvent::Frame(Frame {
                    track: track.track,
                    dts: t,
                    pts: t,
                    keyframe: true,
                    data: Bytes::copy_from_slice(&data.data),
                }));
            }
            _ => {}
        }
    }

    fn on_video(&mut self, now: Instant, arrival: i64, data: MediaData) {
        let Some(i) = self.layer(data.mid, data.rid) else {
            return;
        };
        let (sample, config) = self.video[i].assembler.push(&data.data);
        let layer = &mut self.video[i];
        if let Some(c) = config {
            layer.configured = true;
            self.events.push_back(IngestEvent::Track(
                layer.track,
                TrackConfig::Video(VideoConfig {
                    codec: Codec::H264,
                    width: c.width,
                    height: c.height,
                    record: c.record,
                }),
            ));
        }
        if !data.contiguous {
            layer.need_keyframe = true;
        }
        let Some(sample) = sample else { return };
        if sample.keyframe && layer.configured {
            layer.need_keyframe = false;
        }
        if layer.need_keyframe || !layer.configured {
            metrics::counter!("weir_webrtc_frames_held_total").increment(1);
            self.send_keyframe_request(now, i);
            return;
        }
        let t = layer
            .clock
            .map(data.time.numer(), data.time.denom(), arrival);
        self.events.push_back(IngestEvent::Frame(Frame {
            track: layer.track,
            dts: t,
            pts: t,
            keyframe: sample.keyframe,
            data: sample.data,
        }));
    }

    /// The layer of (mid, rid), created on first sight.
    fn layer(&mut self, mid: Mid, rid: Option<Rid>) -> Option<usize> {
        if let Some(i) = self.video.iter().position(|l| l.mid == mid && l.rid == rid) {
            return Some(i);
        }
        if self.video.len() >= MAX_LAYERS {
            return None;
        }
        let index = rid
            .and_then(|r| layer_index(&r, self.rid_order.get(&mid).map(Vec::as_slice)))
            .unwrap_or(0);
        // A second m=video without simulcast, or an unknown rid: next free index.
        let taken = |ix: u8| self.video.iter().any(|l| l.track.index == ix);
        let index = if taken(index) {
            (0..MAX_LAYERS as u8).find(|ix| !taken(*ix))?
        } else {
            index
        };
        self.video.push(VideoLayer {
            mid,
            rid,
            track: TrackId::new(TrackKind::Video, index),
            assembler: AvcAssembler::new(),
            clock: TrackClock::new(),
            configured: false,
            need_keyframe: true,
            last_request: None,
        });
        Some(self.video.len() - 1)
    }

    fn send_keyframe_request(&mut self, now: Instant, i: usize) {
        let layer = &mut self.video[i];
        if layer
            .last_request
            .is_some_and(|at| now.duration_since(at) < KEYFRAME_REQUEST_EVERY)
        {
            return;
        }
        layer.last_request = Some(now);
        let (mid, rid) = (layer.mid, layer.rid);
        let (_, events) = self.core.mutate(|rtc| {
            if let Some(mut w) = rtc.writer(mid) {
                let _ = w.request_keyframe(rid, KeyframeRequestKind::Pli);
            }
        });
        metrics::counter!("weir_webrtc_keyframe_requests_total").increment(1);
        self.on_events(now, events);
    }
}

/// The bus track index of a simulcast rid: the best layer is 0.
fn layer_index(rid: &str, order: Option<&[Rid]>) -> Option<u8> {
    let known = match rid {
        "f" | "high" | "hi" | "2" => Some(0),
        "h" | "mid" | "medium" | "1" => Some(1),
        "q" | "low" | "lo" | "0" => Some(2),
        _ => None,
    };
    known.or_else(|| {
        order?
            .iter()
            .position(|r| &**r == rid)
            .and_then(|p| u8::try_from(p).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulcast_rids_map_best_first() {
        assert_eq!(layer_index("f", None), Some(0));
        assert_eq!(layer_index("h", None), Some(1));
        assert_eq!(layer_index("q", None), Some(2));
        assert_eq!(layer_index("low", None), Some(2));
        assert_eq!(layer_index("x", None), None);
    }
}
