//! A sans-IO SRT listener multiplexing every caller of one UDP socket.
//!
//! Datagrams go in with [`SrtListener::handle_datagram`]; what to send comes out of
//! [`SrtListener::poll_transmit`], what happened out of [`SrtListener::poll_event`], and
//! [`SrtListener::poll_timeout`] says when to call [`SrtListener::handle_timeout`]. The
//! handshake (HSv5, cookie, latency negotiation) and each connection's ARQ (ACK/NAK
//! retransmission, TSBPD release, too-late drop) are srt-protocol's; this type owns the
//! session table and its bounds, access control and the node's view of a connection.
//!
//! Bounds: at most [`SrtConfig::max_pending`] handshakes in progress (each forgotten after
//! [`SrtConfig::handshake_timeout`]), at most [`SrtConfig::max_connections`] connections
//! (further callers are rejected with `Overload`). Only handshake packets create state;
//! any other datagram from an unknown address is counted and dropped. A panic inside the
//! protocol library ends that one session, never the listener.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use srt_protocol::connection::DuplexConnection;
use srt_protocol::packet::{
    ControlPacket, ControlTypes, CoreRejectReason, HandshakeControlInfo, HandshakeVsInfo, HsV5Info,
    Packet, RejectReason, ServerRejectReason, ShakeType, TimeStamp,
};
use srt_protocol::protocol::pending_connection::listen::Listen;
use srt_protocol::protocol::pending_connection::{AccessControlResponse, ConnectionResult};
use srt_protocol::settings::ConnInitSettings;

use crate::stats::{ConnStats, ListenerCounters};

/// Listener settings.
#[derive(Debug, Clone)]
pub struct SrtConfig {
    /// The receiver latency (TSBPD) this side asks for; the larger of both sides' wins.
    pub latency: Duration,
    /// Silence after which a connection is closed.
    pub peer_idle_timeout: Duration,
    /// Handshakes in progress at most (beyond: new callers are ignored until some finish).
    pub max_pending: usize,
    /// How long a handshake may take, access control included.
    pub handshake_timeout: Duration,
    /// Connections at most.
    pub max_connections: usize,
}

impl Default for SrtConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(120),
            peer_idle_timeout: Duration::from_secs(5),
            max_pending: 1024,
            handshake_timeout: Duration::from_secs(5),
            max_connections: 1000,
        }
    }
}

/// Why the node refuses a caller; sent as the SRT rejection code (libsrt shows it as
/// `SRT_REJX_*`, i.e. `2000 +` the HTTP-like status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// Malformed stream id (2400).
    BadRequest,
    /// Missing credentials (2401).
    Unauthorized,
    /// Too many connections (2402).
    Overload,
    /// Key refused or revoked (2403).
    Forbidden,
    /// No such resource (2404).
    NotFound,
    /// A mode this server does not offer, e.g. playback (2405).
    BadMode,
    /// The resource is busy: someone already publishes there (2409).
    Conflict,
    /// The server cannot decide now (control plane unreachable) (2503).
    Unavailable,
}

impl RejectCode {
    fn reason(self) -> RejectReason {
        RejectReason::Server(match self {
            RejectCode::BadRequest => ServerRejectReason::BadRequest,
            RejectCode::Unauthorized => ServerRejectReason::Unauthorized,
            RejectCode::Overload => ServerRejectReason::Overload,
            RejectCode::Forbidden => ServerRejectReason::Forbidden,
            RejectCode::NotFound => ServerRejectReason::Notfound,
            RejectCode::BadMode => ServerRejectReason::BadMode,
            RejectCode::Conflict => ServerRejectReason::Conflict,
            RejectCode::Unavailable => ServerRejectReason::Down,
        })
    }

    /// The numeric code callers see.
    pub fn code(self) -> i32 {
        match self {
            RejectCode::BadRequest => 2400,
            RejectCode::Unauthorized => 2401,
            RejectCode::Overload => 2402,
            RejectCode::Forbidden => 2403,
            RejectCode::NotFound => 2404,
            RejectCode::BadMode => 2405,
            RejectCode::Conflict => 2409,
            RejectCode::Unavailable => 2503,
        }
    }
}

/// What the listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrtEvent {
    /// A caller finished its handshake and waits for a verdict: answer with
    /// [`SrtListener::accept`] or [`SrtListener::reject`] (unanswered requests are
    /// dropped after the handshake timeout).
    Request {
        /// The caller.
        peer: SocketAddr,
        /// Its stream id, when it sent one.
        stream_id: Option<String>,
    },
    /// An accepted caller is connected.
    Connected {
        /// The caller.
        peer: SocketAddr,
        /// The negotiated receive latency.
        latency: Duration,
    },
    /// One message (for MPEG-TS over SRT usually 7 × 188 bytes), in order, released at
    /// its TSBPD time; messages lost beyond recovery are skipped (see [`ConnStats`]).
    Data {
        /// The caller.
        peer: SocketAddr,
        /// The message.
        data: Bytes,
    },
    /// A connection ended (caller shut down, went silent, or [`SrtListener::close`]).
    Closed {
        /// The caller.
        peer: SocketAddr,
        /// Its final statistics.
        stats: ConnStats,
    },
}

/// A handshake in progress.
struct Pending {
    listen: Listen,
    since: Instant,
    state: PendingState,
}

enum PendingState {
    Handshaking,
    /// Access control asked; the node's verdict is awaited.
    AwaitingVerdict,
    /// Refused: retransmitted handshakes get the same answer until the entry expires.
    Rejected(Option<Bytes>),
}

struct Conn {
    duplex: DuplexConnection,
    next_timer: Instant,
    /// When the caller was last heard from.
    last_rx: Instant,
    /// Data packets the library refused on arrival (see [`ConnStats::late`]).
    late: u64,
}

impl Conn {
    fn stats(&self) -> ConnStats {
        ConnStats::new(self.duplex.statistics(), self.late)
    }
}

/// The listener (see the module docs).
pub struct SrtListener {
    config: SrtConfig,
    settings: ConnInitSettings,
    pending: HashMap<SocketAddr, Pending>,
    conns: HashMap<SocketAddr, Conn>,
    transmits: VecDeque<(SocketAddr, Bytes)>,
    events: VecDeque<SrtEvent>,
    counters: ListenerCounters,
}

impl SrtListener {
    /// A listener with no callers.
    pub fn new(config: SrtConfig) -> Self {
        let settings = ConnInitSettings {
            recv_latency: config.latency,
            send_latency: config.latency,
            peer_idle_timeout: config.peer_idle_timeout,
            ..ConnInitSettings::default()
        };
        Self {
            config,
            settings,
            pending: HashMap::new(),
            conns: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: ListenerCounters::default(),
        }
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Handshakes in progress now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Counters since start (malformed and unroutable datagrams, refusals, panics).
    pub fn counters(&self) -> &ListenerCounters {
        &self.counters
    }

    /// A bound on the bytes one connection's receiver holds, for a memory budget
    /// (srt-protocol does not tell how much it buffers): its receive ring, allocated at
    /// connect with one slot per packet of the receive buffer (each slot at least a
    /// `DataPacket`), and the payloads waiting for their TSBPD release, at most
    /// `latency` of a caller sending `max_bitrate_bps` (0: no cap, the whole receive
    /// buffer). Lost packets waiting for their retransmission are inside the same
    /// window, so the bound holds while the caller keeps to the bitrate.
    pub fn receive_buffer_bound(&self, latency: Duration, max_bitrate_bps: u64) -> usize {
        let packets = usize::from(self.settings.recv_buffer_size);
        // The largest payload a 1500-byte SRT packet carries (MSS less 44 header bytes).
        let payload = 1456;
        let ring = packets.saturating_mul(std::mem::size_of::<srt_protocol::packet::DataPacket>());
        let whole = packets.saturating_mul(payload);
        let window = if max_bitrate_bps == 0 {
            whole
        } else {
            let bytes = u128::from(max_bitrate_bps / 8) * latency.as_millis() / 1000;
            usize::try_from(bytes).unwrap_or(usize::MAX).min(whole)
        };
        ring.saturating_add(window)
    }

    /// Statistics of one connection.
    pub fn stats(&self, peer: SocketAddr) -> Option<ConnStats> {
        self.conns.get(&peer).map(Conn::stats)
    }

    /// One datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        // srt-protocol's parser can panic on crafted input (found by the `srt_listener`
        // fuzz target: a truncated control packet advances past the end of the buffer).
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            Packet::parse(&mut &data[..], from.is_ipv6())
        }));
        let packet = match parsed {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                self.counters.malformed += 1;
                return;
            }
            Err(_) => {
                self.counters.malformed += 1;
                self.counters.panics += 1;
                return;
            }
        };
        if self.conns.contains_key(&from) {
            self.on_connection_packet(now, from, packet);
        } else if self.pending.contains_key(&from) {
            self.on_handshake_packet(now, from, packet);
        } else if is_handshake(&packet) {
            if self.pending.len() >= self.config.max_pending {
                self.counters.pending_full += 1;
                return;
            }
            let listen = Listen::new(self.settings.copy_randomize(), true);
            let state = PendingState::Handshaking;
            self.pending.insert(
                from,
                Pending {
                    listen,
                    since: now,
                    state,
                },
            );
            self.on_handshake_packet(now, from, packet);
        } else {
            self.counters.unroutable += 1;
        }
    }

    fn on_handshake_packet(&mut self, now: Instant, from: SocketAddr, packet: Packet) {
        let Some(p) = self.pending.get_mut(&from) else {
            return;
        };
        if let PendingState::Rejected(answer) = &p.state {
            if let Some(b) = answer.clone() {
                self.transmits.push_back((from, b));
            }
            return;
        }
        if let Some(refusal) = refuse_encrypted(&packet) {
            // srt-protocol panics on a key exchange it was not configured for.
            let b = serialize(&refusal);
            self.transmits.push_back((from, b.clone()));
            p.state = PendingState::Rejected(Some(b));
            self.counters.rejected += 1;
            return;
        }
        let listen = &mut p.listen;
        let result = catch_unwind(AssertUnwindSafe(|| {
            listen.handle_packet(now, Ok((packet, from)))
        }));
        match result {
            Ok(r) => self.on_handshake_result(now, from, r),
            Err(_) => {
                self.counters.panics += 1;
                self.pending.remove(&from);
            }
        }
    }

    fn on_handshake_result(&mut self, now: Instant, from: SocketAddr, result: ConnectionResult) {
        match result {
            ConnectionResult::SendPacket((p, to)) => self.transmit(to, &p),
            ConnectionResult::RequestAccess(req) => {
                let stream_id = req.stream_id.map(|s| s.to_string());
                if self.conns.len() + self.awaiting() >= self.config.max_connections {
                    self.set_awaiting(from);
                    self.reject(now, from, RejectCode::Overload);
                    return;
                }
                self.set_awaiting(from);
                self.events.push_back(SrtEvent::Request {
                    peer: from,
                    stream_id,
                });
            }
            ConnectionResult::Reject(answer, _) => {
                let bytes = answer.map(|(p, to)| {
                    let b = serialize(&p);
                    self.transmits.push_back((to, b.clone()));
                    b
                });
                if let Some(p) = self.pending.get_mut(&from) {
                    p.state = PendingState::Rejected(bytes);
                }
            }
            ConnectionResult::Connected(answer, connection) => {
                self.pending.remove(&from);
                if let Some((p, to)) = answer {
                    self.transmit(to, &p);
                }
                let duplex = DuplexConnection::new(connection);
                let latency = duplex.settings().recv_tsbpd_latency;
                self.conns.insert(
                    from,
                    Conn {
                        duplex,
                        next_timer: now,
                        last_rx: now,
                        late: 0,
                    },
                );
                self.events.push_back(SrtEvent::Connected {
                    peer: from,
                    latency,
                });
                self.pump(now, from);
            }
            ConnectionResult::Failure(_) => {
                self.pending.remove(&from);
            }
            ConnectionResult::NotHandled(_) | ConnectionResult::NoAction => {}
        }
    }

    fn awaiting(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p.state, PendingState::AwaitingVerdict))
            .count()
    }

    fn set_awaiting(&mut self, peer: SocketAddr) {
        if let Some(p) = self.pending.get_mut(&peer) {
            p.state = PendingState::AwaitingVerdict;
        }
    }

    /// Admits a caller that [`SrtEvent::Request`]ed; no effect if it is gone.
    pub fn accept(&mut self, now: Instant, peer: SocketAddr) {
        self.verdict(now, peer, AccessControlResponse::Accepted(None));
    }

    /// Refuses a caller with `code`; no effect if it is gone.
    pub fn reject(&mut self, now: Instant, peer: SocketAddr, code: RejectCode) {
        self.counters.rejected += 1;
        self.verdict(now, peer, AccessControlResponse::Rejected(code.reason()));
    }

    fn verdict(&mut self, now: Instant, peer: SocketAddr, response: AccessControlResponse) {
        let Some(p) = self
            .pending
            .get_mut(&peer)
            .filter(|p| matches!(p.state, PendingState::AwaitingVerdict))
        else {
            return;
        };
        p.state = PendingState::Handshaking;
        let listen = &mut p.listen;
        let result = catch_unwind(AssertUnwindSafe(|| {
            listen.handle_access_control_response(now, response)
        }));
        match result {
            Ok(r) => self.on_handshake_result(now, peer, r),
            Err(_) => {
                self.counters.panics += 1;
                self.pending.remove(&peer);
            }
        }
    }

    /// Ends a connection now (the node kicked the publisher): the caller is told with an
    /// SRT shutdown and [`SrtEvent::Closed`] follows.
    pub fn close(&mut self, now: Instant, peer: SocketAddr) {
        let Some(conn) = self.conns.remove(&peer) else {
            return;
        };
        let settings = conn.duplex.settings();
        let shutdown = Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(
                u32::try_from(
                    now.saturating_duration_since(settings.socket_start_time)
                        .as_micros(),
                )
                .unwrap_or(u32::MAX),
            ),
            dest_sockid: settings.remote_sockid,
            control_type: ControlTypes::Shutdown,
        });
        self.transmit(peer, &shutdown);
        self.events.push_back(SrtEvent::Closed {
            peer,
            stats: conn.stats(),
        });
    }

    fn on_connection_packet(&mut self, now: Instant, from: SocketAddr, packet: Packet) {
        let Some(conn) = self.conns.get_mut(&from) else {
            return;
        };
        conn.last_rx = now;
        let duplex = &mut conn.duplex;
        // The library counts a data packet it refuses on arrival (too late, a second copy
        // after release, no room) as a drop, like a packet it gave up on; the difference
        // across one data packet tells them apart.
        let data = matches!(packet, Packet::Data(_));
        let before = duplex.statistics().rx_dropped_data;
        let ok = catch_unwind(AssertUnwindSafe(|| {
            duplex.handle_packet_input(now, Ok((packet, from)));
        }))
        .is_ok();
        if data {
            conn.late += duplex.statistics().rx_dropped_data.saturating_sub(before);
        }
        if !ok {
            self.counters.panics += 1;
            self.close(now, from);
            return;
        }
        self.pump(now, from);
    }

    /// Runs a connection's timers and collects what it sends and releases.
    fn pump(&mut self, now: Instant, peer: SocketAddr) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return;
        };
        let duplex = &mut conn.duplex;
        let mut sent: Vec<Packet> = Vec::new();
        let mut released: Vec<Bytes> = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let next = duplex.check_timers(now);
            while let Some((p, _)) = duplex.next_packet(now) {
                sent.push(p);
            }
            while let Some((_, data)) = duplex.next_data(now) {
                released.push(data);
            }
            // Releasing data may schedule acknowledgements.
            while let Some((p, _)) = duplex.next_packet(now) {
                sent.push(p);
            }
            (next, duplex.is_open())
        }));
        let (next, open) = match result {
            Ok(r) => r,
            Err(_) => {
                self.counters.panics += 1;
                self.close(now, peer);
                return;
            }
        };
        conn.next_timer = next;
        for p in &sent {
            self.transmit(peer, p);
        }
        self.events.extend(
            released
                .into_iter()
                .map(|data| SrtEvent::Data { peer, data }),
        );
        if !open && let Some(conn) = self.conns.remove(&peer) {
            self.events.push_back(SrtEvent::Closed {
                peer,
                stats: conn.stats(),
            });
        }
    }

    /// When [`SrtListener::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.config.peer_idle_timeout;
        let conns = self
            .conns
            .values()
            .map(|c| c.next_timer.min(c.last_rx + idle));
        let pending = self
            .pending
            .values()
            .map(|p| p.since + self.config.handshake_timeout);
        conns.chain(pending).min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.handshake_timeout;
        self.pending.retain(|_, p| now < p.since + timeout);
        // A caller silent for the idle timeout is gone (the protocol's own dead-peer
        // detection backs off for much longer than that).
        let idle = self.config.peer_idle_timeout;
        let silent: Vec<SocketAddr> = self
            .conns
            .iter()
            .filter(|(_, c)| now >= c.last_rx + idle)
            .map(|(a, _)| *a)
            .collect();
        for peer in silent {
            self.counters.idle_closed += 1;
            self.close(now, peer);
        }
        let due: Vec<SocketAddr> = self
            .conns
            .iter()
            .filter(|(_, c)| c.next_timer <= now)
            .map(|(a, _)| *a)
            .collect();
        for peer in due {
            self.pump(now, peer);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SrtEvent> {
        self.events.pop_front()
    }

    fn transmit(&mut self, to: SocketAddr, p: &Packet) {
        self.transmits.push_back((to, serialize(p)));
    }
}

/// The rejection (`SRT_REJ_UNSECURE`) of a conclusion handshake carrying a key exchange:
/// this listener has no passphrase.
fn refuse_encrypted(p: &Packet) -> Option<Packet> {
    let Packet::Control(ControlPacket {
        timestamp,
        control_type: ControlTypes::Handshake(shake),
        ..
    }) = p
    else {
        return None;
    };
    let HandshakeVsInfo::V5(info) = &shake.info else {
        return None;
    };
    if shake.shake_type != ShakeType::Conclusion || info.ext_km.is_none() {
        return None;
    }
    Some(Packet::Control(ControlPacket {
        timestamp: *timestamp,
        dest_sockid: shake.socket_id,
        control_type: ControlTypes::Handshake(HandshakeControlInfo {
            shake_type: ShakeType::Rejection(RejectReason::Core(CoreRejectReason::Unsecure)),
            info: HandshakeVsInfo::V5(HsV5Info::default()),
            ..shake.clone()
        }),
    }))
}

fn is_handshake(p: &Packet) -> bool {
    matches!(
        p,
        Packet::Control(ControlPacket {
            control_type: ControlTypes::Handshake(_),
            ..
        })
    )
}

fn serialize(p: &Packet) -> Bytes {
    let mut b = BytesMut::with_capacity(p.wire_size());
    p.serialize(&mut b);
    b.freeze()
}
