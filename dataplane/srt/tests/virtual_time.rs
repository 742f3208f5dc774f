//! The listener against an SRT caller (srt-protocol's own caller state machine) over a
//! simulated link, in virtual time: handshakes, stream ids, verdicts, loss recovery,
//! idle timeout, kicks and bounds — deterministic, no sockets.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use srt_protocol::connection::DuplexConnection;
use srt_protocol::packet::{Packet, RejectReason, ServerRejectReason};
use srt_protocol::protocol::pending_connection::connect::Connect;
use srt_protocol::protocol::pending_connection::{ConnectionReject, ConnectionResult};
use srt_protocol::settings::ConnInitSettings;
use weir_srt::{RejectCode, SrtConfig, SrtEvent, SrtListener};

const SERVER: &str = "10.0.0.1:9000";
const CLIENT: &str = "10.0.0.2:5000";
const ONE_WAY: Duration = Duration::from_millis(10);
const MSG: usize = 1316;

/// A deterministic lossy link (xorshift; `loss_pct` of datagrams vanish each way).
struct Link {
    queue: VecDeque<(Instant, SocketAddr, SocketAddr, Bytes)>,
    state: u64,
    loss_pct: u64,
    lost: u64,
}

impl Link {
    fn new(loss_pct: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            state: 0x9E37_79B9_7F4A_7C15,
            loss_pct,
            lost: 0,
        }
    }

    fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, b: Bytes) {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        if self.state % 100 < self.loss_pct {
            self.lost += 1;
            return;
        }
        self.queue.push_back((now + ONE_WAY, from, to, b));
    }

    fn due(&mut self, now: Instant) -> Vec<(SocketAddr, SocketAddr, Bytes)> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|(t, ..)| *t <= now) {
            let (_, f, t, b) = self.queue.pop_front().unwrap();
            out.push((f, t, b));
        }
        out
    }
}

enum CallerState {
    Connecting(Box<Connect>),
    Open(Box<DuplexConnection>),
    Rejected(ConnectionReject),
}

/// An SRT caller: srt-protocol's connect state machine, then its duplex connection.
struct Caller {
    addr: SocketAddr,
    state: CallerState,
    out: Vec<Packet>,
    received_closed: bool,
}

impl Caller {
    fn new(addr: SocketAddr, stream_id: &str) -> Self {
        Self::with_passphrase(addr, stream_id, None)
    }

    fn with_passphrase(addr: SocketAddr, stream_id: &str, passphrase: Option<&str>) -> Self {
        let settings = ConnInitSettings {
            recv_latency: Duration::from_millis(120),
            send_latency: Duration::from_millis(120),
            // libsrt's default send buffer (8192 packets); the library's own default here
            // is 32 packets, 32 ms at this test's rate, which would make the caller forget
            // a packet before its retransmission could be asked for.
            send_buffer_size: srt_protocol::options::PacketCount(8192),
            key_settings: passphrase.map(|p| srt_protocol::settings::KeySettings {
                key_size: srt_protocol::options::KeySize::AES128,
                passphrase: p.into(),
            }),
            ..ConnInitSettings::default()
        };
        let connect = Connect::new(
            SERVER.parse().unwrap(),
            addr.ip(),
            settings,
            Some(stream_id.to_owned()),
            rand_seq(),
        );
        Self {
            addr,
            state: CallerState::Connecting(Box::new(connect)),
            out: Vec::new(),
            received_closed: false,
        }
    }

    fn on_result(&mut self, r: ConnectionResult) {
        match r {
            ConnectionResult::SendPacket((p, _)) => self.out.push(p),
            ConnectionResult::Connected(p, c) => {
                if let Some((p, _)) = p {
                    self.out.push(p);
                }
                self.state = CallerState::Open(Box::new(DuplexConnection::new(c)));
            }
            ConnectionResult::Reject(_, why) => self.state = CallerState::Rejected(why),
            _ => {}
        }
    }

    fn tick(&mut self, now: Instant) {
        match &mut self.state {
            CallerState::Connecting(c) => {
                let r = c.handle_tick(now);
                self.on_result(r);
            }
            CallerState::Open(d) => {
                d.check_timers(now);
                while let Some((p, _)) = d.next_packet(now) {
                    self.out.push(p);
                }
                if !d.is_open() {
                    self.received_closed = true;
                }
            }
            CallerState::Rejected(_) => {}
        }
    }

    fn receive(&mut self, now: Instant, from: SocketAddr, b: &[u8]) {
        let p = Packet::parse(&mut &b[..], false).unwrap();
        match &mut self.state {
            CallerState::Connecting(c) => {
                let r = c.handle_packet(Ok((p, from)), now);
                self.on_result(r);
            }
            CallerState::Open(d) => d.handle_packet_input(now, Ok((p, from))),
            CallerState::Rejected(_) => {}
        }
    }

    fn send_message(&mut self, now: Instant, data: Bytes) {
        if let CallerState::Open(d) = &mut self.state {
            d.handle_data_input(now, Some((now, data)));
        }
    }

    fn flush(&mut self, now: Instant, link: &mut Link) {
        for p in self.out.drain(..) {
            link.send(now, self.addr, SERVER.parse().unwrap(), ser(&p));
        }
    }
}

fn rand_seq() -> srt_protocol::packet::SeqNumber {
    srt_protocol::packet::SeqNumber::new_truncate(12345)
}

fn ser(p: &Packet) -> Bytes {
    let mut b = BytesMut::new();
    p.serialize(&mut b);
    b.freeze()
}

fn message(i: u32) -> Bytes {
    let mut m = vec![0x47u8; MSG];
    m[1..5].copy_from_slice(&i.to_be_bytes());
    Bytes::from(m)
}

/// Runs caller + listener for `ms` milliseconds; `accept` decides each request;
/// `send` says how many messages the caller sends (one per ms once connected).
struct World {
    now: Instant,
    link: Link,
    listener: SrtListener,
    caller: Caller,
    events: Vec<SrtEvent>,
    /// The first data datagram that reached the listener, for replays.
    first_data: Option<Bytes>,
}

impl World {
    fn new(loss_pct: u64, stream_id: &str, config: SrtConfig) -> Self {
        Self {
            now: Instant::now(),
            link: Link::new(loss_pct),
            listener: SrtListener::new(config),
            caller: Caller::new(CLIENT.parse().unwrap(), stream_id),
            events: Vec::new(),
            first_data: None,
        }
    }

    fn run(&mut self, ms: u64, verdict: Option<RejectCode>, mut send: u32) -> u32 {
        let server: SocketAddr = SERVER.parse().unwrap();
        let mut sent = 0;
        for step in 0..ms {
            self.now += Duration::from_millis(1);
            let now = self.now;
            for (from, to, b) in self.link.due(now) {
                if to == server {
                    if self.first_data.is_none()
                        && matches!(Packet::parse(&mut &b[..], false), Ok(Packet::Data(_)))
                    {
                        self.first_data = Some(b.clone());
                    }
                    self.listener.handle_datagram(now, from, &b);
                } else {
                    self.caller.receive(now, from, &b);
                }
            }
            if self.listener.poll_timeout().is_some_and(|t| t <= now) {
                self.listener.handle_timeout(now);
            }
            while let Some(ev) = self.listener.poll_event() {
                if let SrtEvent::Request { peer, .. } = &ev {
                    match verdict {
                        None => self.listener.accept(now, *peer),
                        Some(code) => self.listener.reject(now, *peer, code),
                    }
                }
                self.events.push(ev);
            }
            while let Some((to, b)) = self.listener.poll_transmit() {
                self.link.send(now, server, to, b);
            }
            // Handshake packets are retransmitted every 100 ms, as libsrt does.
            let connecting = matches!(self.caller.state, CallerState::Connecting(_));
            if !connecting || step % 100 == 0 {
                self.caller.tick(now);
            }
            if send > 0 && matches!(self.caller.state, CallerState::Open(_)) {
                self.caller.send_message(now, message(sent));
                sent += 1;
                send -= 1;
                self.caller.tick(now);
            }
            self.caller.flush(now, &mut self.link);
        }
        sent
    }

    fn data(&self) -> Vec<Bytes> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SrtEvent::Data { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn handshake_carries_the_stream_id_and_data_arrives_in_order() {
    let mut w = World::new(0, "#!::r=live/key1,m=publish", SrtConfig::default());
    let sent = w.run(1500, None, 300);
    assert_eq!(sent, 300);
    match &w.events[0] {
        SrtEvent::Request { stream_id, .. } => {
            assert_eq!(stream_id.as_deref(), Some("#!::r=live/key1,m=publish"))
        }
        other => panic!("first event {other:?}"),
    }
    assert!(
        matches!(w.events[1], SrtEvent::Connected { latency, .. } if latency >= Duration::from_millis(120))
    );
    let data = w.data();
    assert_eq!(data.len(), 300);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d, &message(i as u32));
    }
    assert_eq!(w.listener.connections(), 1);
    assert_eq!(w.listener.pending(), 0);
}

/// Sends 1000 messages over a link losing `loss`% each way (RTT 20 ms) with receiver
/// latency `latency_ms`; returns (delivered in order, dropped too late).
fn lossy_run(loss: u64, latency_ms: u64) -> (usize, u64) {
    let config = SrtConfig {
        latency: Duration::from_millis(latency_ms),
        ..SrtConfig::default()
    };
    let mut w = World::new(loss, "live/key1", config);
    let sent = w.run(3000, None, 1000);
    assert_eq!(sent, 1000);
    assert!(w.link.lost > 0, "the link lost nothing at {loss}%");
    let stats = w.listener.stats(CLIENT.parse().unwrap()).unwrap();
    assert!(stats.retransmitted > 0, "{stats:?}");
    let data = w.data();
    // Whatever arrives is in order and intact; gaps only where packets were dropped.
    let mut last = None;
    for d in &data {
        let i = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
        assert_eq!(d, &message(i));
        assert!(last.is_none_or(|l| i > l), "out of order at {i}");
        last = Some(i);
    }
    (data.len(), stats.dropped)
}

#[test]
fn loss_is_recovered_within_the_latency() {
    // Up to 10 % loss each way, latency 120 ms (6 RTT): everything recovered, nothing
    // counted as lost (second copies that arrive after release are `late`, not lost).
    for loss in [1, 2, 5, 10] {
        assert_eq!(lossy_run(loss, 120), (1000, 0), "{loss} % each way");
    }
    // With more latency there is room for more retransmissions.
    assert_eq!(lossy_run(20, 1000), (1000, 0), "20 % each way, 1 s");
}

#[test]
fn a_copy_arriving_after_release_is_late_not_lost() {
    let mut w = World::new(0, "live/key1", SrtConfig::default());
    w.run(1000, None, 100);
    assert_eq!(w.data().len(), 100);
    let client: SocketAddr = CLIENT.parse().unwrap();
    let before = w.listener.stats(client).unwrap();
    assert_eq!((before.dropped, before.late), (0, 0), "{before:?}");
    // The first packet again, long after it was released (a retransmission's second copy).
    let copy = w.first_data.clone().unwrap();
    w.listener.handle_datagram(w.now, client, &copy);
    let after = w.listener.stats(client).unwrap();
    assert_eq!((after.dropped, after.late), (0, 1), "{after:?}");
    assert_eq!(w.data().len(), 100);
}

#[test]
fn a_packet_not_recovered_in_time_is_counted_lost_and_the_stream_goes_on() {
    // 20 % each way with 120 ms: some packets cannot be recovered in time. The stream
    // goes on in order past them, and every packet missing is counted as lost.
    let (delivered, dropped) = lossy_run(20, 120);
    assert!((950..1000).contains(&delivered), "{delivered} delivered");
    assert!(
        dropped >= (1000 - delivered) as u64,
        "{delivered} delivered but only {dropped} counted lost"
    );
}

#[test]
fn a_refused_caller_gets_the_rejection_code() {
    let mut w = World::new(0, "live/badkey", SrtConfig::default());
    w.run(500, Some(RejectCode::Forbidden), 10);
    match &w.caller.state {
        CallerState::Rejected(ConnectionReject::Rejected(r)) => {
            assert_eq!(*r, RejectReason::Server(ServerRejectReason::Forbidden))
        }
        CallerState::Rejected(other) => panic!("rejected with {other:?}"),
        _ => panic!("caller not rejected"),
    }
    assert!(w.data().is_empty());
    assert_eq!(w.listener.connections(), 0);
    assert_eq!(RejectCode::Forbidden.code(), 2403);
    // The refusal is forgotten after the handshake timeout.
    w.run(6000, Some(RejectCode::Forbidden), 0);
    assert_eq!(w.listener.pending(), 0);
}

#[test]
fn a_silent_caller_is_closed_after_the_idle_timeout() {
    let config = SrtConfig {
        peer_idle_timeout: Duration::from_secs(2),
        ..SrtConfig::default()
    };
    let mut w = World::new(0, "k", config);
    w.run(500, None, 50);
    assert_eq!(w.listener.connections(), 1);
    // The caller vanishes: nothing it sends arrives any more.
    w.link.loss_pct = 100;
    w.run(4000, None, 0);
    assert_eq!(w.listener.connections(), 0);
    assert!(
        w.events
            .iter()
            .any(|e| matches!(e, SrtEvent::Closed { stats, .. } if stats.packets >= 50))
    );
}

#[test]
fn close_tells_the_caller() {
    let mut w = World::new(0, "k", SrtConfig::default());
    w.run(500, None, 50);
    let peer: SocketAddr = CLIENT.parse().unwrap();
    w.listener.close(w.now, peer);
    assert_eq!(w.listener.connections(), 0);
    assert!(matches!(
        w.listener.poll_event(),
        Some(SrtEvent::Closed { .. })
    ));
    w.run(200, None, 0);
    assert!(
        w.caller.received_closed,
        "the caller did not hear the shutdown"
    );
}

#[test]
fn junk_creates_no_state_and_handshakes_are_bounded() {
    let config = SrtConfig {
        max_pending: 16,
        ..SrtConfig::default()
    };
    let mut l = SrtListener::new(config);
    let now = Instant::now();
    let from: SocketAddr = CLIENT.parse().unwrap();
    l.handle_datagram(now, from, b"not srt");
    l.handle_datagram(now, from, &[0u8; 2000]);
    assert_eq!(l.pending(), 0);
    assert!(l.counters().malformed + l.counters().unroutable >= 2);
    assert!(l.poll_transmit().is_none());
    // 100 callers start handshakes from different ports: only 16 are kept.
    for port in 0..100u16 {
        let mut c = Caller::new(SocketAddr::new(from.ip(), 6000 + port), "k");
        c.tick(now);
        for p in c.out.drain(..) {
            l.handle_datagram(now, c.addr, &ser(&p));
        }
    }
    assert_eq!(l.pending(), 16);
    assert_eq!(l.counters().pending_full, 84);
    // Unanswered handshakes are forgotten.
    l.handle_timeout(now + Duration::from_secs(6));
    assert_eq!(l.pending(), 0);
}

#[test]
fn connections_beyond_the_limit_are_refused_with_overload() {
    let config = SrtConfig {
        max_connections: 0,
        ..SrtConfig::default()
    };
    let mut w = World::new(0, "k", config);
    w.run(500, None, 10);
    assert!(matches!(
        w.caller.state,
        CallerState::Rejected(ConnectionReject::Rejected(RejectReason::Server(
            ServerRejectReason::Overload
        )))
    ));
    assert!(w.events.is_empty(), "{:?}", w.events);
}

#[test]
fn a_caller_with_a_passphrase_is_refused_as_unsecure() {
    let mut w = World::new(0, "k", SrtConfig::default());
    w.caller = Caller::with_passphrase(CLIENT.parse().unwrap(), "k", Some("0123456789abcdef"));
    w.run(500, None, 10);
    assert!(
        matches!(
            w.caller.state,
            CallerState::Rejected(ConnectionReject::Rejected(RejectReason::Core(
                srt_protocol::packet::CoreRejectReason::Unsecure
            )))
        ),
        "caller not refused"
    );
    assert_eq!(w.listener.counters().panics, 0);
    assert!(w.events.is_empty(), "{:?}", w.events);
}

/// A fuzzer find: records of [caller | step ms][len][bytes] (the `srt_listener` fuzz
/// target's format) that made srt-protocol's packet parser panic.
#[test]
fn crafted_datagrams_found_by_the_fuzzer_do_not_panic() {
    let data = include_bytes!("data/fuzz-parse-panic.bin");
    let mut l = SrtListener::new(SrtConfig::default());
    let mut now = Instant::now();
    let mut rest = &data[..];
    while rest.len() >= 2 {
        let (head, len) = (rest[0], usize::from(rest[1]));
        rest = &rest[2..];
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        now += Duration::from_millis(u64::from(head & 0x3f));
        let from = SocketAddr::from(([10, 0, 0, 1], 5000 + u16::from(head >> 6)));
        l.handle_datagram(now, from, body);
        l.handle_timeout(now);
        while l.poll_event().is_some() {}
        while l.poll_transmit().is_some() {}
    }
    assert!(l.counters().malformed > 0);
}

#[test]
fn a_truncated_control_packet_that_panics_the_parser_is_dropped_and_counted() {
    // Found by the `srt_listener` fuzz target: a user-defined control packet cut two
    // bytes into its body makes srt-protocol's parser advance past the end and panic.
    let bad = [
        0xff, 0xff, 0x00, 0x08, 0x00, 0x6b, 0x6b, 0x2f, 0x6b, 0xff, 0, 0, 0, 0, 0, 0, 0x0a, 0x08,
    ];
    let mut l = SrtListener::new(SrtConfig::default());
    let from: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
    l.handle_datagram(Instant::now(), from, &bad);
    assert_eq!(l.counters().panics, 1);
    assert_eq!(l.counters().malformed, 1);
    assert!(l.poll_event().is_none());
    assert!(l.poll_transmit().is_none());
}

#[test]
fn the_receive_buffer_bound_follows_latency_and_bitrate() {
    let l = SrtListener::new(SrtConfig::default());
    let ring = l.receive_buffer_bound(Duration::ZERO, 8_000_000);
    assert!(ring > 0, "the receive ring is charged");
    // 8 Mbit/s for 120 ms: 120 000 bytes of payloads on top of the ring.
    let at_8 = l.receive_buffer_bound(Duration::from_millis(120), 8_000_000);
    assert_eq!(at_8 - ring, 120_000);
    // No bitrate cap: the whole receive buffer (srt-protocol's default, about 12 MB: 8192 × 1500 bytes).
    let uncapped = l.receive_buffer_bound(Duration::from_millis(120), 0);
    assert!(uncapped - ring >= 12_000_000, "{uncapped}");
    // A window beyond the receive buffer is capped by it.
    assert_eq!(
        l.receive_buffer_bound(Duration::from_secs(8), 1_000_000_000),
        uncapped
    );
}
