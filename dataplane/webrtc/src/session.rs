//! What WHIP and WHEP sessions share: one str0m [`Rtc`] in ICE-lite mode, driven through
//! `handle_*(now, …)` calls, with its outputs drained into queues the driver empties
//! (datagrams to send, the next timeout).
//!
//! str0m requires every mutation to be followed by a full drain of `poll_output`; each
//! method here that mutates drains before it returns, so callers cannot get it wrong.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::media::{Direction, MediaKind, Mid, Rid, Rids};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

use crate::WebrtcError;

/// Longest SDP offer accepted (simulcast offers from browsers are ~10 KiB).
pub const MAX_OFFER_BYTES: usize = 64 * 1024;
/// A session that is not connected this long after its answer is dropped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Node-wide WebRTC settings.
#[derive(Clone)]
pub struct RtcSettings {
    /// Addresses offered as host candidates (the shard's UDP socket, as reachable by
    /// clients: a public IP for 1:1 NAT).
    pub candidates: Vec<SocketAddr>,
    /// One DTLS certificate shared by the sessions (generating one per session costs a
    /// key generation each).
    pub dtls_cert: Option<DtlsCert>,
    /// When WHEP viewers estimate their bandwidth (TWCC), which picks their simulcast
    /// layer; str0m then paces their packets by the estimate, so a key frame leaves over
    /// tens of ms. Without: no layer switching and no pacing (packets go out as they come).
    pub bandwidth_estimation: Bwe,
}

/// When a WHEP viewer estimates its bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bwe {
    /// Only when the source has several video layers to choose from (simulcast, or
    /// several H.264 tracks): a single layer gains nothing from the estimate but pacing,
    /// which delays each key frame (per-frame p99 ~35 → 7–17 ms in `bench sfu`).
    #[default]
    Auto,
    /// Always.
    On,
    /// Never (no layer switching).
    Off,
}

impl Bwe {
    /// Whether a viewer of a source with `layers` video layers estimates its bandwidth.
    pub fn enabled(self, layers: usize) -> bool {
        match self {
            Bwe::Auto => layers > 1,
            Bwe::On => true,
            Bwe::Off => false,
        }
    }
}

impl std::str::FromStr for Bwe {
    type Err = String;

    /// `auto`, `on`/`true`, `off`/`false`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Bwe::Auto),
            "on" | "true" | "yes" | "1" => Ok(Bwe::On),
            "off" | "false" | "no" | "0" => Ok(Bwe::Off),
            other => Err(format!(
                "bandwidth estimation is auto, on or off, not {other:?}"
            )),
        }
    }
}

impl std::fmt::Debug for RtcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcSettings")
            .field("candidates", &self.candidates)
            .field("bandwidth_estimation", &self.bandwidth_estimation)
            .finish_non_exhaustive()
    }
}

impl RtcSettings {
    /// Settings offering `candidates`, with a fresh certificate and bandwidth estimation
    /// where there are layers to choose from.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        let dtls_cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate();
        Self {
            candidates,
            dtls_cert,
            bandwidth_estimation: Bwe::Auto,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The local address to send from (one of the candidates).
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
}

/// A media section of an accepted offer.
#[derive(Debug, Clone)]
pub(crate) struct NegotiatedMedia {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Our direction.
    pub direction: Direction,
    /// Simulcast layers received, in offer order.
    pub rids: Vec<Rid>,
}

/// One ICE-lite peer connection and its output queues.
pub(crate) struct RtcCore {
    pub rtc: Rtc,
    ufrag: String,
    transmits: VecDeque<Datagram>,
    timeout: Instant,
    created: Instant,
    connected: bool,
    failure: Option<WebrtcError>,
}

impl RtcCore {
    /// Accepts `offer`; returns the core and the SDP answer. (str0m announces media only
    /// once connected, so nothing it emits here is needed: see `negotiated_media`.)
    pub fn accept(
        now: Instant,
        settings: &RtcSettings,
        offer: &str,
        configure: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> Result<(Self, String), WebrtcError> {
        if offer.len() > MAX_OFFER_BYTES {
            return Err(WebrtcError::BadSdp(format!(
                "offer of {} bytes exceeds {MAX_OFFER_BYTES}",
                offer.len()
            )));
        }
        if settings.candidates.is_empty() {
            return Err(WebrtcError::NoCandidates);
        }
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WebrtcError::BadSdp(e.to_string()))?;
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .clear_codecs();
        if let Some(cert) = settings.dtls_cert.clone() {
            config = config.set_dtls_cert(cert);
        }
        let mut rtc = configure(config).build(now);
        for addr in &settings.candidates {
            let c = Candidate::host(*addr, "udp")
                .map_err(|e| WebrtcError::Negotiation(format!("candidate {addr}: {e}")))?;
            rtc.add_local_candidate(c);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebrtcError::Negotiation(e.to_string()))?;
        let mut core = Self {
            rtc,
            ufrag,
            transmits: VecDeque::new(),
            timeout: now,
            created: now,
            connected: false,
            failure: None,
        };
        core.drain();
        Ok((core, answer.to_sdp_string()))
    }

    /// The media sections the answer accepted, in offer order (str0m only announces
    /// them once connected; the offer's `a=mid:` lines name them).
    pub fn negotiated_media(&self, offer: &str) -> Vec<NegotiatedMedia> {
        let mut out = Vec::new();
        for line in offer.lines() {
            let Some(mid) = line.trim_end().strip_prefix("a=mid:") else {
                continue;
            };
            let mid = Mid::from(mid);
            let Some(media) = self.rtc.media(mid) else {
                continue;
            };
            if media.remote_pts().is_empty() || media.disabled() {
                continue;
            }
            let rids = match media.rids_rx() {
                Rids::Specific(v) => v.clone(),
                _ => Vec::new(),
            };
            out.push(NegotiatedMedia {
                mid,
                kind: media.kind(),
                direction: media.direction(),
                rids,
            });
        }
        out
    }

    /// Our ICE username fragment (routes STUN to this session).
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// True once ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Why the session ended, once it has.
    pub fn failure(&self) -> Option<&WebrtcError> {
        self.failure.as_ref()
    }

    /// When [`RtcCore::handle_timeout`] is next due.
    pub fn timeout(&self) -> Instant {
        self.timeout
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    /// A datagram arrived from `source` on local `destination`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> Vec<Event> {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            metrics::counter!("weir_webrtc_dropped_datagrams_total", "why" => "unparsable")
                .increment(1);
            return Vec::new();
        };
        let input = Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            metrics::counter!("weir_webrtc_dropped_datagrams_total", "why" => "not_ours")
                .increment(1);
            return Vec::new();
        }
        self.input(input)
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Event> {
        if !self.connected && now.duration_since(self.created) >= CONNECT_TIMEOUT {
            self.fail(WebrtcError::Session("not connected in time".into()));
            return Vec::new();
        }
        self.input(Input::Timeout(now))
    }

    /// Ends the session (DELETE, kick, shutdown).
    pub fn close(&mut self) {
        self.rtc.disconnect();
        self.drain();
        self.fail(WebrtcError::Session("closed".into()));
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Event> {
        if self.failure.is_some() {
            return Vec::new();
        }
        if let Err(e) = self.rtc.handle_input(input) {
            self.fail(WebrtcError::Session(e.to_string()));
            return Vec::new();
        }
        self.drain()
    }

    /// Runs a mutation of the `Rtc` and drains after it.
    pub fn mutate<T>(&mut self, f: impl FnOnce(&mut Rtc) -> T) -> (T, Vec<Event>) {
        let out = f(&mut self.rtc);
        (out, self.drain())
    }

    pub fn fail(&mut self, why: WebrtcError) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }

    /// Drains `poll_output` to its timeout (str0m's single-mutation invariant).
    fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        self.connected = true;
                        events.push(e);
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        self.fail(WebrtcError::Session("ICE disconnected".into()));
                    }
                    Event::Closed => self.fail(WebrtcError::Session("peer closed".into())),
                    other => events.push(other),
                },
                Err(e) => {
                    self.fail(WebrtcError::Session(e.to_string()));
                    break;
                }
            }
        }
        if !self.rtc.is_alive() {
            self.fail(WebrtcError::Session("peer connection ended".into()));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::Bwe;

    #[test]
    fn estimation_is_on_in_auto_only_with_layers_to_choose_from() {
        assert!(!Bwe::Auto.enabled(1) && Bwe::Auto.enabled(3));
        assert!(Bwe::On.enabled(1) && !Bwe::Off.enabled(3));
        assert_eq!("auto".parse(), Ok(Bwe::Auto));
        assert_eq!("True".parse(), Ok(Bwe::On));
        assert_eq!("off".parse(), Ok(Bwe::Off));
        assert!("sometimes".parse::<Bwe>().is_err());
    }
}
