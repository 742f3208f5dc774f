//! The load client's WebRTC peers: str0m sessions, one UDP socket each, driven as tasks
//! of a small tokio runtime (one worker per bench CPU), so hundreds of receive-only
//! subscribers run on one core. The publisher is the same kind of peer sending the test
//! media in real time through str0m's sample writer.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::DtlsCert;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::watch;

use super::media::{FPS, OPUS_FRAME_MS, TestMedia, frame_hash};

/// What all peers of one run share: the publisher's send times and the counters.
#[derive(Debug, Default)]
pub struct Shared {
    /// Frame hash → when the publisher had sent the frame's last packet.
    pub sent: Mutex<HashMap<u64, Instant>>,
    /// Whether latencies are being recorded (the measured window).
    pub window: AtomicBool,
    /// Added latency per received video frame in the window, in microseconds.
    pub latencies: Mutex<Vec<u32>>,
    /// Video frames the publisher sent.
    pub video_sent: AtomicU64,
    /// Opus packets the publisher sent.
    pub audio_sent: AtomicU64,
    /// Video frames all subscribers received.
    pub video_recv: AtomicU64,
    /// Opus packets all subscribers received.
    pub audio_recv: AtomicU64,
    /// RTP packets in the frames all subscribers received (from their sequence ranges).
    pub packets_recv: AtomicU64,
    /// Received video frames the publisher never sent (hash unknown).
    pub unmatched: AtomicU64,
    /// Subscribers whose ICE/DTLS came up.
    pub connected: AtomicU64,
    /// Peers that failed or disconnected.
    pub failed: AtomicU64,
    /// Whether the publisher is connected and sending.
    pub publishing: AtomicBool,
}

/// A counter snapshot, to take differences over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Video frames sent.
    pub video_sent: u64,
    /// Opus packets sent.
    pub audio_sent: u64,
    /// Video frames received (all subscribers).
    pub video_recv: u64,
    /// Opus packets received (all subscribers).
    pub audio_recv: u64,
    /// RTP packets received (all subscribers).
    pub packets_recv: u64,
}

impl Shared {
    /// The counters now.
    pub fn counts(&self) -> Counts {
        Counts {
            video_sent: self.video_sent.load(Ordering::Relaxed),
            audio_sent: self.audio_sent.load(Ordering::Relaxed),
            video_recv: self.video_recv.load(Ordering::Relaxed),
            audio_recv: self.audio_recv.load(Ordering::Relaxed),
            packets_recv: self.packets_recv.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            video_sent: self.video_sent.saturating_sub(o.video_sent),
            audio_sent: self.audio_sent.saturating_sub(o.audio_sent),
            video_recv: self.video_recv.saturating_sub(o.video_recv),
            audio_recv: self.audio_recv.saturating_sub(o.audio_recv),
            packets_recv: self.packets_recv.saturating_sub(o.packets_recv),
        }
    }
}

/// A str0m peer before it is driven: its `Rtc` and its UDP socket on 127.0.0.1.
pub struct Peer {
    /// The session.
    pub rtc: Rtc,
    socket: UdpSocket,
}

impl Peer {
    /// A full-ICE peer with H.264 and Opus, a host candidate on a fresh UDP socket on
    /// `ip` (a local address), and the run's shared DTLS certificate.
    pub fn new(cert: &DtlsCert, ip: std::net::IpAddr) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind((ip, 0)).context("binding a UDP socket")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .set_dtls_cert(cert.clone())
            .build(Instant::now());
        let c = Candidate::host(local, "udp").map_err(|e| anyhow!("candidate: {e}"))?;
        rtc.add_local_candidate(c);
        Ok(Self { rtc, socket })
    }

    /// An offer with one video and one audio section in direction `dir`; returns it,
    /// the pending change and the two sections' mids.
    pub fn offer(&mut self, dir: Direction) -> anyhow::Result<Offer> {
        let mut change = self.rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, dir, None, None, None);
        let audio = change.add_media(MediaKind::Audio, dir, None, None, None);
        let (offer, pending) = change.apply().context("no offer")?;
        Ok(Offer {
            sdp: offer.to_sdp_string(),
            pending,
            mids: (video, audio),
        })
    }

    /// Takes the server's answer to [`Peer::offer`].
    pub fn accept_answer(&mut self, pending: SdpPendingOffer, sdp: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| anyhow!("bad answer: {e}"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| anyhow!("answer refused: {e}"))
    }

    /// Answers the server's offer (Janus offers to its subscribers).
    pub fn accept_offer(&mut self, sdp: &str) -> anyhow::Result<String> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| anyhow!("bad offer: {e}"))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| anyhow!("offer refused: {e}"))?;
        Ok(answer.to_sdp_string())
    }
}

/// An offer made by [`Peer::offer`].
pub struct Offer {
    /// The SDP.
    pub sdp: String,
    /// The change to complete with the answer.
    pub pending: SdpPendingOffer,
    /// The video and audio mids.
    pub mids: (Mid, Mid),
}

/// What a driven peer does with its media.
enum Role {
    Subscriber,
    Publisher(Box<Sender>),
}

/// The publisher's real-time schedule over the test media.
struct Sender {
    media: Arc<TestMedia>,
    start: Option<Instant>,
    video_next: u64,
    audio_next: u64,
    mids: (Mid, Mid),
}

impl Sender {
    fn video_due(&self, start: Instant) -> Instant {
        start + Duration::from_micros(self.video_next * 1_000_000 / u64::from(FPS))
    }
    fn audio_due(&self, start: Instant) -> Instant {
        start + Duration::from_millis(self.audio_next * u64::from(OPUS_FRAME_MS))
    }
    fn next_due(&self) -> Option<Instant> {
        let s = self.start?;
        Some(self.video_due(s).min(self.audio_due(s)))
    }
}

/// Starts driving `peer` as a receive-only subscriber on `rt`.
pub fn spawn_subscriber(
    rt: &tokio::runtime::Handle,
    peer: Peer,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    spawn(rt, peer, Role::Subscriber, shared, stop)
}

/// Starts driving `peer` as the publisher of `media` (once connected) on `rt`.
pub fn spawn_publisher(
    rt: &tokio::runtime::Handle,
    peer: Peer,
    mids: (Mid, Mid),
    media: Arc<TestMedia>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let sender = Sender {
        media,
        start: None,
        video_next: 0,
        audio_next: 0,
        mids,
    };
    spawn(rt, peer, Role::Publisher(Box::new(sender)), shared, stop)
}

fn spawn(
    rt: &tokio::runtime::Handle,
    peer: Peer,
    role: Role,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let socket = {
        let _guard = rt.enter();
        tokio::net::UdpSocket::from_std(peer.socket)?
    };
    rt.spawn(async move {
        let mut task = Task {
            rtc: peer.rtc,
            local: socket
                .local_addr()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            socket,
            role,
            shared: shared.clone(),
        };
        if let Err(e) = task.run(stop).await {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            crate::progress!("peer {} failed: {e:#}", task.local);
        }
    });
    Ok(())
}

struct Task {
    rtc: Rtc,
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
    role: Role,
    shared: Arc<Shared>,
}

impl Task {
    async fn run(&mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut timeout = self.drain()?;
            if !self.rtc.is_alive() {
                anyhow::bail!("session closed");
            }
            if let Role::Publisher(s) = &self.role
                && let Some(due) = s.next_due()
            {
                timeout = timeout.min(due);
            }
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let (n, src) = r.context("UDP receive")?;
                    self.input(src, &buf[..n])?;
                    // Take what else is queued on the socket before waiting again.
                    for _ in 0..64 {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, src)) => {
                                self.drain()?;
                                self.input(src, &buf[..n])?;
                            }
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(timeout)) => {}
                _ = stop.changed() => {
                    self.rtc.disconnect();
                    let _ = self.drain();
                    return Ok(());
                }
            }
            // str0m's timers only when due: its timeout handling (ICE, RTCP, NACK
            // scheduling) is most of a subscriber's CPU if run after every datagram.
            let now = Instant::now();
            if now >= timeout {
                self.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| anyhow!("timeout: {e}"))?;
            }
            self.send_due(now)?;
        }
    }

    fn input(&mut self, source: SocketAddr, bytes: &[u8]) -> anyhow::Result<()> {
        // Datagrams str0m does not recognise (none expected) are skipped, not fatal.
        let Ok(r) = Receive::new(Protocol::Udp, source, self.local, bytes) else {
            return Ok(());
        };
        self.rtc
            .handle_input(Input::Receive(Instant::now(), r))
            .map_err(|e| anyhow!("input: {e}"))
    }

    /// Polls str0m until it wants a timeout: sends its datagrams, handles its events.
    fn drain(&mut self) -> anyhow::Result<Instant> {
        loop {
            match self.rtc.poll_output().map_err(|e| anyhow!("poll: {e}"))? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    // Loopback: a full socket buffer drops the datagram, as a network would.
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.event(e)?,
            }
        }
    }

    fn event(&mut self, e: Event) -> anyhow::Result<()> {
        match e {
            Event::Connected => {
                if matches!(self.role, Role::Subscriber) {
                    self.shared.connected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                anyhow::bail!("ICE disconnected")
            }
            Event::MediaData(d) => self.received(&d),
            _ => {}
        }
        Ok(())
    }

    fn received(&mut self, d: &MediaData) {
        let sh = &self.shared;
        let packets = (**d.seq_range.end()).saturating_sub(**d.seq_range.start()) + 1;
        sh.packets_recv.fetch_add(packets, Ordering::Relaxed);
        match d.params.spec().codec {
            Codec::H264 => {
                let now = Instant::now();
                sh.video_recv.fetch_add(1, Ordering::Relaxed);
                let Some(h) = frame_hash(&d.data) else {
                    return;
                };
                let sent = sh.sent.lock().ok().and_then(|m| m.get(&h).copied());
                match sent {
                    Some(t) if sh.window.load(Ordering::Relaxed) => {
                        let us = now.saturating_duration_since(t).as_micros();
                        if let Ok(mut l) = sh.latencies.lock() {
                            l.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                    }
                    Some(_) => {}
                    None => {
                        sh.unmatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Codec::Opus => {
                sh.audio_recv.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The publisher: writes every frame whose time has come.
    fn send_due(&mut self, now: Instant) -> anyhow::Result<()> {
        let Role::Publisher(s) = &mut self.role else {
            return Ok(());
        };
        if !self.rtc.is_connected() {
            return Ok(());
        }
        let (vmid, amid) = s.mids;
        let start = *s.start.get_or_insert(now);
        self.shared.publishing.store(true, Ordering::Relaxed);
        loop {
            let (video, due) = {
                let (v, a) = (s.video_due(start), s.audio_due(start));
                if v <= a { (true, v) } else { (false, a) }
            };
            if due > now {
                return Ok(());
            }
            let (mid, codec, data, rtp) = if video {
                let i = s.video_next;
                s.video_next += 1;
                let n = s.media.video.len() as u64;
                let frame = &s.media.video[(i % n) as usize];
                (
                    vmid,
                    Codec::H264,
                    frame,
                    MediaTime::new(i * 3000, Frequency::NINETY_KHZ),
                )
            } else {
                let j = s.audio_next;
                s.audio_next += 1;
                let n = s.media.audio.len() as u64;
                let pkt = &s.media.audio[(j % n) as usize];
                let ticks = j * 48 * u64::from(OPUS_FRAME_MS);
                (
                    amid,
                    Codec::Opus,
                    pkt,
                    MediaTime::new(ticks, Frequency::FORTY_EIGHT_KHZ),
                )
            };
            let w = self
                .rtc
                .writer(mid)
                .context("no writer for the publisher's media")?;
            let pt = w
                .payload_params()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt())
                .with_context(|| format!("{codec:?} not negotiated"))?;
            w.write(pt, due, rtp, data.clone())
                .map_err(|e| anyhow!("write: {e}"))?;
            let hash = if video { frame_hash(data) } else { None };
            if let (Some(h), Ok(mut m)) = (hash, self.shared.sent.lock()) {
                m.insert(h, Instant::now());
            }
            // Send the frame's packets now, then note when its last one left.
            let mut t = Instant::now();
            loop {
                match self.rtc.poll_output().map_err(|e| anyhow!("poll: {e}"))? {
                    Output::Timeout(_) => break,
                    Output::Transmit(tr) => {
                        let _ = self.socket.try_send_to(&tr.contents, tr.destination);
                        t = Instant::now();
                    }
                    Output::Event(_) => {}
                }
            }
            if let (Some(h), Ok(mut m)) = (hash, self.shared.sent.lock()) {
                m.insert(h, t);
            }
            let counter = if video {
                &self.shared.video_sent
            } else {
                &self.shared.audio_sent
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}
