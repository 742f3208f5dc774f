//! WHEP playback: bus frames out to a browser.
//!
//! The session sends what the source carries, without transcoding: H.264 (AVCC on the
//! bus → Annex B with SPS/PPS in front of every key frame) and Opus. The caller offers
//! frames once [`WhepSession::is_connected`]; frames before the first key frame, and
//! after the caller reports a gap ([`WhepSession::resync`]), are skipped until the next
//! key frame. Media time is the bus timestamp in each codec's RTP clock, and wallclock
//! follows the bus timeline from the first frame sent, so the receiver's A/V sync (RTCP
//! sender reports) sees one consistent clock even when a GOP is sent in a burst on join.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::format::Codec as RtpCodec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Pt};
use str0m::{Event, RtcConfig};
use weir_media::{Codec, Frame, TIMESCALE, TrackConfig, TrackKind};

use crate::WebrtcError;
use crate::h264::annexb_from_avcc;
use crate::session::{Datagram, RtcCore, RtcSettings};

/// What a playback session tells its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackEvent {
    /// ICE and DTLS are up: start offering frames.
    Connected,
    /// The viewer lost pictures it could not recover (PLI/FIR): ask the source for a key
    /// frame.
    KeyframeWanted,
    /// The viewer's estimated available bandwidth changed (bits per second).
    Bandwidth(u64),
}

/// How long sent video packets are kept for NACK resends: 1 s (libwebrtc keeps about
/// that; Janus 500 ms by default). str0m keeps 3 s, which at 1.5 Mb/s was most of the
/// ~1.2 MiB a viewer cost (each viewer holds its own copy of every packet).
const RESEND_AGE: Duration = Duration::from_secs(1);
/// At most this many of them (about 1 s at 5 Mb/s; str0m's default is 1,000).
const RESEND_PACKETS: usize = 512;
/// Queued resends are dropped above this share of the bytes sent (str0m's default).
const RESEND_RATIO_CAP: Option<f32> = Some(0.15);

struct Sender {
    mid: Mid,
    pt: Pt,
}

/// A WHEP viewer's peer connection.
pub struct WhepSession {
    core: RtcCore,
    video: Option<Sender>,
    audio: Option<Sender>,
    need_keyframe: bool,
    /// Bus time and instant of the first frame sent.
    base: Option<(i64, Instant)>,
    events: VecDeque<PlaybackEvent>,
    sent_frames: u64,
}

impl WhepSession {
    /// Answers a WHEP offer for a source with `video` / `audio` codecs and `layers`
    /// video layers to choose from (1 without simulcast).
    pub fn accept(
        now: Instant,
        settings: &RtcSettings,
        offer: &str,
        video: Option<Codec>,
        audio: Option<Codec>,
        layers: usize,
    ) -> Result<(Self, String), WebrtcError> {
        let video = video.filter(|c| *c == Codec::H264);
        let audio = audio.filter(|c| *c == Codec::Opus);
        if video.is_none() && audio.is_none() {
            return Err(WebrtcError::NoUsableMedia(
                "this stream has no track WebRTC can carry without transcoding \
                 (H.264 video or Opus audio)"
                    .into(),
            ));
        }
        // TWCC bandwidth estimation (starting at 2.5 Mb/s) drives the simulcast layer
        // choice: `PlaybackEvent::Bandwidth` → `LayerSelector`.
        let bwe = settings
            .bandwidth_estimation
            .enabled(layers)
            .then(|| str0m::bwe::Bitrate::kbps(2500));
        let configure = |c: RtcConfig| {
            c.enable_h264(video.is_some())
                .enable_opus(audio.is_some(), false)
                .enable_bwe(bwe)
        };
        let (core, answer) = RtcCore::accept(now, settings, offer, configure)?;
        let mut s = Self {
            core,
            video: None,
            audio: None,
            need_keyframe: true,
            base: None,
            events: VecDeque::new(),
            sent_frames: 0,
        };
        for m in s.core.negotiated_media(offer) {
            if !matches!(m.direction, Direction::SendOnly | Direction::SendRecv) {
                continue;
            }
            let want = match m.kind {
                MediaKind::Video if s.video.is_none() && video.is_some() => RtpCodec::H264,
                MediaKind::Audio if s.audio.is_none() && audio.is_some() => RtpCodec::Opus,
                _ => continue,
            };
            if let Some(pt) = s.payload_type(m.mid, want) {
                let sender = Some(Sender { mid: m.mid, pt });
                match m.kind {
                    MediaKind::Video => s.video = sender,
                    _ => s.audio = sender,
                }
            }
        }
        if let Some(mid) = s.video.as_ref().map(|v| v.mid) {
            let mut api = s.core.rtc.direct_api();
            if let Some(tx) = api.stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(RESEND_PACKETS, RESEND_AGE, RESEND_RATIO_CAP);
            }
        }
        if s.video.is_none() && s.audio.is_none() {
            return Err(WebrtcError::NoUsableMedia(
                "the offer accepts none of this stream's codecs (H.264 packetization-mode=1, Opus)"
                    .into(),
            ));
        }
        Ok((s, answer))
    }

    /// The payload type for `codec` on `mid`: H.264 in packetization mode 1 preferred.
    fn payload_type(&mut self, mid: Mid, codec: RtpCodec) -> Option<Pt> {
        let rtc = &mut self.core.rtc;
        let remote: Vec<Pt> = rtc.media(mid)?.remote_pts().to_vec();
        let writer = rtc.writer(mid)?;
        let mut best: Option<(Pt, bool)> = None;
        for p in writer.payload_params() {
            let spec = p.spec();
            if spec.codec != codec || !remote.contains(&p.pt()) {
                continue;
            }
            let mode1 = spec.format.packetization_mode == Some(1);
            if best.is_none_or(|(_, m)| !m && mode1) {
                best = Some((p.pt(), mode1));
            }
        }
        best.map(|(pt, _)| pt)
    }

    /// Whether this session sends a track of `kind`.
    pub fn sends(&self, kind: TrackKind) -> bool {
        match kind {
            TrackKind::Video => self.video.is_some(),
            TrackKind::Audio => self.audio.is_some(),
        }
    }

    /// True once frames can be sent.
    pub fn is_connected(&self) -> bool {
        self.core.is_connected()
    }

    /// Our ICE ufrag.
    pub fn ufrag(&self) -> &str {
        self.core.ufrag()
    }

    /// When [`WhepSession::handle_timeout`] is next due.
    pub fn timeout(&self) -> Instant {
        self.core.timeout()
    }

    /// Why the session ended, once it has.
    pub fn failure(&self) -> Option<&WebrtcError> {
        self.core.failure()
    }

    /// Frames handed to str0m so far.
    pub fn sent_frames(&self) -> u64 {
        self.sent_frames
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.core.poll_transmit()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<PlaybackEvent> {
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
        self.on_events(events);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let events = self.core.handle_timeout(now);
        self.on_events(events);
    }

    /// Ends the session.
    pub fn close(&mut self) {
        self.core.close();
    }

    /// Frames were lost between the source and this session (the bus skipped): video
    /// waits for the next key frame.
    pub fn resync(&mut self) {
        self.need_keyframe = true;
    }

    /// Ends the session for a reason of the driver's.
    pub fn fail_with(&mut self, why: String) {
        self.core.fail(WebrtcError::Session(why));
    }

    /// Sends one frame of a track configured as `config`. Returns false when it was not
    /// sent (not connected, waiting for a key frame, a codec this session does not send).
    pub fn send_frame(&mut self, now: Instant, frame: &Frame, config: &TrackConfig) -> bool {
        if !self.core.is_connected() || self.core.failure().is_some() {
            return false;
        }
        let (sender, payload, rtp) = match (frame.kind(), config) {
            (TrackKind::Video, TrackConfig::Video(v)) if v.codec == Codec::H264 => {
                let Some(s) = &self.video else { return false };
                if self.need_keyframe && !frame.keyframe {
                    return false;
                }
                self.need_keyframe = false;
                let record = frame.keyframe.then_some(&v.record[..]);
                let payload = annexb_from_avcc(&frame.data, record);
                let rtp = MediaTime::from_90khz(frame.pts.max(0) as u64);
                ((s.mid, s.pt), payload, rtp)
            }
            (TrackKind::Audio, TrackConfig::Audio(a)) if a.codec == Codec::Opus => {
                let Some(s) = &self.audio else { return false };
                if self.base.is_none() && self.video.is_some() {
                    // Start with the picture: audio before the first key frame would
                    // anchor the clock without anything to show.
                    return false;
                }
                let ticks = frame.pts.max(0) as u64 * 48_000 / u64::from(TIMESCALE);
                let rtp = MediaTime::new(ticks, str0m::media::Frequency::FORTY_EIGHT_KHZ);
                ((s.mid, s.pt), frame.data.to_vec(), rtp)
            }
            _ => return false,
        };
        let (base_pts, base_at) = *self.base.get_or_insert((frame.pts, now));
        let offset = u64::try_from(frame.pts - base_pts).unwrap_or(0);
        let wallclock = base_at + Duration::from_micros(offset * 1_000_000 / u64::from(TIMESCALE));
        let ((mid, pt), ok) = (sender, true);
        let (result, events) = self.core.mutate(|rtc| match rtc.writer(mid) {
            Some(w) => w
                .write(pt, wallclock, rtp, payload)
                .map_err(|e| e.to_string()),
            None => Err("no writer".to_owned()),
        });
        self.on_events(events);
        match result {
            Ok(()) => {
                self.sent_frames += 1;
                ok
            }
            Err(e) => {
                tracing::debug!(error = %e, "WHEP write failed");
                false
            }
        }
    }

    fn on_events(&mut self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Connected => self.events.push_back(PlaybackEvent::Connected),
                Event::KeyframeRequest(_) => self.events.push_back(PlaybackEvent::KeyframeWanted),
                Event::EgressBitrateEstimate(str0m::bwe::BweKind::Twcc { estimate, .. }) => {
                    self.events
                        .push_back(PlaybackEvent::Bandwidth(estimate.as_u64()));
                }
                _ => {}
            }
        }
    }
}
