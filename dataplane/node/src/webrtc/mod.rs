//! The WebRTC driver of a shard: one UDP socket (ICE-lite, one port per shard), the
//! sessions this shard answered, and the node-wide directory that lets any shard end a
//! session (WHIP/WHEP `DELETE` may arrive on another connection).
//!
//! A datagram is routed by its sender address once known, and before that by the ufrag
//! in its STUN binding request ([`weir_webrtc::stun`]); anything else is counted and
//! dropped without touching a session. Each session is a task (see `publish` and
//! `play`) owning its sans-IO [`weir_webrtc`] session; the receive loop only queues
//! datagrams into the session's inbox.

pub mod ice_servers;
mod play;
mod publish;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::net::UdpSocket;
use parking_lot::Mutex;
use weir_webrtc::{Datagram, RtcSettings, WebrtcError, stun};

use crate::budget::ConnCharge;
use crate::limits::{ConnLimits, ConnPermit};
use crate::rtmp_conn::RtmpContext;
use crate::shutdown::Shutdown;

pub use play::play;
pub use publish::publish;

/// Datagrams queued for one session before further ones are dropped.
const INBOX_LIMIT: usize = 1024;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// Bytes charged to the memory budget for a session's str0m state that is neither a
/// send nor a receive buffer: ICE agent, DTLS and SRTP contexts, the negotiated SDP,
/// RTCP and statistics, plus this node's session task. str0m's state cannot be measured
/// from outside; this is an estimate (see the figures built on it).
const SESSION_STATE_BYTES: usize = 64 * 1024;
/// A WHIP session's estimate: [`SESSION_STATE_BYTES`] and str0m's receive side, which
/// keeps reordering windows (15 audio, 30 video packets by default) and the packets of
/// the frame being depacketized until it is complete: a keyframe of a few Mbit/s
/// stream is 100–200 KiB.
const WHIP_SESSION_BYTES: usize = SESSION_STATE_BYTES + 192 * 1024;
/// A WHEP session's estimate: [`SESSION_STATE_BYTES`] and str0m's send rings, kept for
/// NACK resends and filled within seconds of playing: 1000 video and 50 audio packets
/// by default, at about 1200 bytes of payload each. Frames waiting for the session are
/// on the bus, already charged as its subscriber queue.
const WHEP_SESSION_BYTES: usize = SESSION_STATE_BYTES + 1050 * 1200;
/// The datagrams queued for a session are charged in steps of this many bytes, so a
/// busy session does not touch the node-wide counter on every turn.
const INBOX_CHARGE_STEP: usize = 16 * 1024;

/// Sessions of the whole node, by id, so that any shard can end one.
#[derive(Default)]
pub struct SessionDirectory {
    sessions: Mutex<HashMap<String, Shutdown>>,
}

impl SessionDirectory {
    /// Ends session `id`; false when there is no such session.
    pub fn end(&self, id: &str) -> bool {
        match self.sessions.lock().get(id) {
            Some(kick) => {
                kick.trigger();
                true
            }
            None => false,
        }
    }

    /// True while session `id` runs.
    pub fn contains(&self, id: &str) -> bool {
        self.sessions.lock().contains_key(id)
    }

    fn insert(&self, id: String, kick: Shutdown) {
        let mut s = self.sessions.lock();
        s.insert(id, kick);
        metrics::gauge!("weir_webrtc_sessions").set(s.len() as f64);
    }

    fn remove(&self, id: &str) {
        let mut s = self.sessions.lock();
        s.remove(id);
        metrics::gauge!("weir_webrtc_sessions").set(s.len() as f64);
    }
}

/// Datagrams waiting for one session.
#[derive(Default)]
struct Inbox {
    queue: RefCell<VecDeque<(SocketAddr, Vec<u8>)>>,
    /// Bytes of the datagrams in `queue`.
    bytes: std::cell::Cell<usize>,
    wake: event_listener::Event,
}

impl Inbox {
    fn push(&self, from: SocketAddr, data: Vec<u8>) {
        let mut q = self.queue.borrow_mut();
        if q.len() >= INBOX_LIMIT {
            metrics::counter!("weir_webrtc_dropped_datagrams_total", "why" => "inbox_full")
                .increment(1);
            return;
        }
        self.bytes.set(self.bytes.get() + data.capacity());
        q.push_back((from, data));
        drop(q);
        self.wake.notify(1);
    }

    fn take(&self) -> VecDeque<(SocketAddr, Vec<u8>)> {
        self.bytes.set(0);
        std::mem::take(&mut *self.queue.borrow_mut())
    }

    /// Charges a session's `fixed` estimate and the datagrams queued for it now (in
    /// steps of [`INBOX_CHARGE_STEP`]); called at each turn, before [`Inbox::take`].
    fn charge(&self, charge: &mut ConnCharge, fixed: usize) {
        let queued = self.bytes.get().div_ceil(INBOX_CHARGE_STEP) * INBOX_CHARGE_STEP;
        charge.set(fixed + queued);
    }

    async fn wait(&self) {
        loop {
            if !self.queue.borrow().is_empty() {
                return;
            }
            let listener = self.wake.listen();
            if !self.queue.borrow().is_empty() {
                return;
            }
            listener.await;
        }
    }
}

/// One shard's WebRTC state.
pub struct WebrtcShard {
    socket: Rc<UdpSocket>,
    local: SocketAddr,
    settings: RtcSettings,
    by_ufrag: RefCell<HashMap<String, Rc<Inbox>>>,
    by_addr: RefCell<HashMap<SocketAddr, Rc<Inbox>>>,
    /// Node-wide session directory.
    pub directory: Arc<SessionDirectory>,
    /// Sessions per client address and per node (a permit is held by each session).
    pub limits: Arc<ConnLimits>,
    /// Publish authorisation, the registry and the RTMP application name (WHIP keys are
    /// checked exactly like RTMP publishing names).
    pub ctx: Arc<RtmpContext>,
    /// STUN/TURN servers handed to clients with each answer.
    pub ice_servers: Arc<[ice_servers::IceServer]>,
}

impl WebrtcShard {
    /// Wraps this shard's socket; `public_ips` are announced as candidates on its port.
    pub fn new(
        socket: UdpSocket,
        public_ips: &[std::net::IpAddr],
        directory: Arc<SessionDirectory>,
        limits: Arc<ConnLimits>,
        ctx: Arc<RtmpContext>,
        settings: &RtcSettings,
        ice_servers: Arc<[ice_servers::IceServer]>,
    ) -> std::io::Result<Rc<Self>> {
        let bound = socket.local_addr()?;
        let candidates: Vec<SocketAddr> = public_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, bound.port()))
            .collect();
        // ICE pairs a request with the local candidate it was sent to. A socket bound to
        // all interfaces cannot tell (no IP_PKTINFO here), so datagrams are taken as sent
        // to the first announced address.
        let local = if bound.ip().is_unspecified() {
            candidates.first().copied().unwrap_or(bound)
        } else {
            bound
        };
        Ok(Rc::new(Self {
            socket: Rc::new(socket),
            local,
            settings: RtcSettings {
                candidates,
                ..settings.clone()
            },
            by_ufrag: RefCell::default(),
            by_addr: RefCell::default(),
            directory,
            limits,
            ctx,
            ice_servers,
        }))
    }

    /// The settings sessions on this shard are answered with.
    pub fn settings(&self) -> &RtcSettings {
        &self.settings
    }

    fn register(&self, ufrag: &str) -> Rc<Inbox> {
        let inbox = Rc::new(Inbox::default());
        self.by_ufrag
            .borrow_mut()
            .insert(ufrag.to_owned(), inbox.clone());
        inbox
    }

    fn unregister(&self, ufrag: &str, inbox: &Rc<Inbox>) {
        self.by_ufrag.borrow_mut().remove(ufrag);
        self.by_addr
            .borrow_mut()
            .retain(|_, i| !Rc::ptr_eq(i, inbox));
    }

    fn route(&self, from: SocketAddr, data: Vec<u8>) {
        if let Some(inbox) = self.by_addr.borrow().get(&from) {
            inbox.push(from, data);
            return;
        }
        let inbox = stun::local_ufrag(&data).and_then(|u| self.by_ufrag.borrow().get(u).cloned());
        match inbox {
            Some(inbox) => {
                self.by_addr.borrow_mut().insert(from, inbox.clone());
                inbox.push(from, data);
            }
            None => {
                metrics::counter!("weir_webrtc_dropped_datagrams_total", "why" => "unknown_peer")
                    .increment(1);
            }
        }
    }

    async fn send(&self, d: Datagram) {
        let BufResult(r, _) = self.socket.send_to(d.contents, d.destination).await;
        if let Err(e) = r {
            metrics::counter!("weir_webrtc_send_errors_total").increment(1);
            tracing::debug!(error = %e, to = %d.destination, "WebRTC send failed");
        }
    }
}

/// Reads this shard's WebRTC socket until shutdown.
pub async fn receive(shard: Rc<WebrtcShard>, shutdown: Shutdown) {
    use futures_util::future::{Either, select};
    use std::pin::pin;
    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    // The shard's datagram buffer, shared by its sessions.
    let _charge = shard.ctx.registry.budget().charge(buf.capacity());
    loop {
        let recv = pin!(shard.socket.recv_from(buf));
        let stop = pin!(shutdown.wait());
        let BufResult(res, back) = match select(recv, stop).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => return,
        };
        buf = back;
        match res {
            Ok((n, from)) => {
                metrics::counter!("weir_webrtc_datagrams_in_total").increment(1);
                shard.route(from, buf[..n].to_vec());
            }
            Err(e) => {
                tracing::debug!(error = %e, "WebRTC receive failed");
                compio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        buf.clear();
    }
}

impl WebrtcShard {
    /// A session permit for a client at `peer` (unknown: counted as `0.0.0.0`), or the
    /// refusal to answer (503 + Retry-After), counted and logged like refused
    /// connections (`weir_connections_refused_total{listener="webrtc"}`).
    pub fn admit(&self, peer: Option<std::net::IpAddr>) -> Result<ConnPermit, Refused> {
        let ip = peer.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let limits = &self.limits;
        limits.try_acquire(ip).map_err(|why| {
            limits.refused(SocketAddr::new(ip, 0), why);
            Refused {
                status: 503,
                message: match why {
                    crate::limits::Refusal::PerIp => {
                        "too many WebRTC sessions from this address; end one or retry later"
                    }
                    _ => "this node has too many WebRTC sessions; retry later or use another node",
                }
                .into(),
            }
        })
    }
}

/// A new random session id (128 bits, hex).
fn session_id() -> Result<String, WebrtcError> {
    let mut id = [0u8; 16];
    weir_streamkey::random_bytes(&mut id)
        .map_err(|e| WebrtcError::Session(format!("no randomness: {e}")))?;
    Ok(format!("{:032x}", u128::from_be_bytes(id)))
}

/// Waits for the first of: a datagram, the session's timeout, its kick, node shutdown.
async fn wait_turn(inbox: &Inbox, timeout: Instant, kick: &Shutdown, stop: &Shutdown) {
    use futures_util::future::select;
    use std::pin::pin;
    let sleep = pin!(compio::time::sleep(
        timeout.saturating_duration_since(Instant::now())
    ));
    let inbox = pin!(inbox.wait());
    let kicked = pin!(kick.wait());
    let stopped = pin!(stop.wait());
    select(select(sleep, inbox), select(kicked, stopped)).await;
}

/// A refused WHIP/WHEP request: HTTP status and message.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// Plain-text reason for the client.
    pub message: String,
}

impl From<WebrtcError> for Refused {
    fn from(e: WebrtcError) -> Self {
        Refused {
            status: e.http_status(),
            message: e.to_string(),
        }
    }
}

/// An answered WHIP/WHEP offer.
#[derive(Debug)]
pub struct Answered {
    /// Session id (its resource is `/whip/session/<id>` or `/whep/session/<id>`).
    pub id: String,
    /// The SDP answer.
    pub answer: String,
}
