//! The SRT driver of a shard: one UDP socket (SO_REUSEPORT on the SRT port, so a
//! caller's datagrams always reach the same shard), the sans-IO [`SrtListener`], and the
//! publishes of the callers it admitted.
//!
//! Three tasks share the shard's state: the receive loop feeds datagrams to the
//! listener, the timer loop runs its timers (ACK/NAK, TSBPD release, idle callers, kicks),
//! and one short task per handshake authorises the stream key. Each then sends what the
//! listener queued and handles its events: messages go through the caller's
//! [`Publishing`] (demux, clocks, gate, bus) synchronously, on this shard.
//!
//! Stream ids: `<key>`, `live/<key>` or `#!::r=live/<key>,m=publish`; the key is checked
//! exactly like an RTMP publishing name. Refusals carry SRT reject codes (see
//! [`RejectCode`]): 2402 too many connections (from the caller's address, node-wide, or
//! on the node), 2403 bad key, 2404 unknown application, 2405 playback requested,
//! 2409 channel already published, 2503 authorisation unavailable.
//!
//! A caller takes a connection permit (per address and node-wide, shared by every shard;
//! see `limits`) when its handshake asks for a verdict, before its key is checked, and
//! holds it until its connection closes.

mod publish;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::BufResult;
use compio::net::UdpSocket;
use event_listener::Event;
use futures_util::future::{Either, select};
use weir_srt::{Mode, RejectCode, SrtConfig, SrtEvent, SrtListener, StreamRequest};

use crate::budget::ConnCharge;
use crate::limits::{ConnLimits, ConnPermit};
use crate::rtmp_conn::RtmpContext;
use crate::shutdown::Shutdown;
use publish::Publishing;

/// Largest datagram read (SRT's default MTU is 1500).
const MAX_DATAGRAM: usize = 1500;
/// Longest wait for the stream key check.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// While the shard has callers, the timer loop runs at least this often (kicks are
/// noticed within it). With none it sleeps until a datagram comes: an idle node does
/// not wake 50 times a second for nothing.
const MAX_TICK: Duration = Duration::from_millis(20);

/// One shard's SRT state.
pub struct SrtShard {
    socket: UdpSocket,
    listener: RefCell<SrtListener>,
    publishing: RefCell<HashMap<SocketAddr, Publishing>>,
    /// Connection permits of admitted callers and of those whose key is being checked.
    permits: RefCell<HashMap<SocketAddr, ConnPermit>>,
    /// Each connected caller's charge to the memory budget: a bound of what its
    /// receiver buffers ([`SrtListener::receive_buffer_bound`] for the negotiated
    /// latency and the node's bitrate cap).
    charges: RefCell<HashMap<SocketAddr, ConnCharge>>,
    limits: Arc<ConnLimits>,
    ctx: Arc<RtmpContext>,
    /// The timer loop sleeps without a deadline (no caller, nothing pending).
    timers_parked: Cell<bool>,
    /// Wakes a parked timer loop: the listener's state changed.
    timers_wake: Event,
}

impl SrtShard {
    /// Wraps this shard's SRT socket; callers are capped by `limits`.
    pub fn new(
        socket: UdpSocket,
        config: SrtConfig,
        limits: Arc<ConnLimits>,
        ctx: Arc<RtmpContext>,
    ) -> Rc<Self> {
        Rc::new(Self {
            socket,
            listener: RefCell::new(SrtListener::new(config)),
            publishing: RefCell::new(HashMap::new()),
            permits: RefCell::new(HashMap::new()),
            charges: RefCell::new(HashMap::new()),
            limits,
            ctx,
            timers_parked: Cell::new(false),
            timers_wake: Event::new(),
        })
    }

    /// The listener may have new timers (a datagram came, a handshake was answered):
    /// a parked timer loop looks again.
    fn timers_changed(&self) {
        if self.timers_parked.get() {
            self.timers_wake.notify(1);
        }
    }

    /// Handles what the listener reported and sends what it queued.
    async fn flush(self: &Rc<Self>) {
        let (events, out) = {
            let mut l = self.listener.borrow_mut();
            let events: Vec<SrtEvent> = std::iter::from_fn(|| l.poll_event()).collect();
            let out: Vec<(SocketAddr, Bytes)> = std::iter::from_fn(|| l.poll_transmit()).collect();
            (events, out)
        };
        for ev in events {
            self.on_event(ev);
        }
        for (to, b) in out {
            let BufResult(r, _) = self.socket.send_to(b, to).await;
            if let Err(e) = r {
                tracing::debug!(%to, error = %e, "SRT send failed");
            }
        }
    }

    fn on_event(self: &Rc<Self>, ev: SrtEvent) {
        match ev {
            SrtEvent::Request { peer, stream_id } => {
                // A caller asking again (its permit is already held) is not counted twice.
                if !self.permits.borrow().contains_key(&peer) {
                    match self.limits.try_acquire(peer.ip()) {
                        Ok(permit) => {
                            self.permits.borrow_mut().insert(peer, permit);
                        }
                        Err(why) => {
                            self.limits.refused(peer, why);
                            self.listener.borrow_mut().reject(
                                Instant::now(),
                                peer,
                                RejectCode::Overload,
                            );
                            return;
                        }
                    }
                }
                let shard = self.clone();
                compio::runtime::spawn(async move { shard.authorize(peer, stream_id).await })
                    .detach();
            }
            SrtEvent::Connected { peer, latency } => {
                metrics::gauge!("weir_srt_connections").increment(1.0);
                let registry = &self.ctx.registry;
                let bound = self
                    .listener
                    .borrow()
                    .receive_buffer_bound(latency, registry.max_publish_bps());
                let charge = registry.budget().charge(bound);
                self.charges.borrow_mut().insert(peer, charge);
                tracing::debug!(%peer, ?latency, "SRT caller connected");
            }
            SrtEvent::Data { peer, data } => {
                metrics::counter!("weir_srt_ingest_bytes_total").increment(data.len() as u64);
                if let Some(p) = self.publishing.borrow_mut().get_mut(&peer) {
                    p.on_message(&data);
                }
            }
            SrtEvent::Closed { peer, stats } => {
                self.permits.borrow_mut().remove(&peer);
                self.charges.borrow_mut().remove(&peer);
                metrics::gauge!("weir_srt_connections").decrement(1.0);
                metrics::counter!("weir_srt_retransmitted_packets_total")
                    .increment(stats.retransmitted);
                metrics::counter!("weir_srt_dropped_packets_total").increment(stats.dropped);
                metrics::counter!("weir_srt_late_packets_total").increment(stats.late);
                let p = self.publishing.borrow_mut().remove(&peer);
                if let Some(mut p) = p {
                    p.finish();
                    let (stream, conn) = (p.stream.clone(), p.conn);
                    drop(p); // the bus hears that the publisher left
                    self.ctx.registry.end_publish(&stream, conn, Instant::now());
                    tracing::info!(
                        channel = %stream.channel, %peer, packets = stats.packets,
                        retransmitted = stats.retransmitted, dropped = stats.dropped,
                        late = stats.late, "SRT publisher left"
                    );
                }
            }
        }
    }

    /// Checks a caller's stream id and key, admits it, and answers the handshake.
    async fn authorize(self: Rc<Self>, peer: SocketAddr, stream_id: Option<String>) {
        let verdict = self.admit(peer, stream_id.as_deref().unwrap_or("")).await;
        let now = Instant::now();
        match verdict {
            Ok(p) => {
                let mut l = self.listener.borrow_mut();
                l.accept(now, peer);
                if l.stats(peer).is_some() {
                    metrics::counter!("weir_publishes_total", "result" => "accepted").increment(1);
                    tracing::info!(channel = %p.stream.channel, %peer, "SRT publishing started");
                    self.publishing.borrow_mut().insert(peer, p);
                } else {
                    // The caller gave up while its key was checked.
                    drop(l);
                    self.permits.borrow_mut().remove(&peer);
                    let (stream, conn) = (p.stream.clone(), p.conn);
                    drop(p);
                    self.ctx.registry.end_publish(&stream, conn, now);
                }
            }
            Err((code, reason)) => {
                metrics::counter!("weir_publishes_total", "result" => "refused").increment(1);
                crate::limits::log_refused_publish("srt", &peer, &code.code(), &reason);
                self.listener.borrow_mut().reject(now, peer, code);
                self.permits.borrow_mut().remove(&peer);
            }
        }
        self.timers_changed();
        self.flush().await;
    }

    async fn admit(
        &self,
        peer: SocketAddr,
        stream_id: &str,
    ) -> Result<Publishing, (RejectCode, String)> {
        let ctx = &self.ctx;
        let req =
            StreamRequest::parse(stream_id).map_err(|e| (RejectCode::BadRequest, e.to_string()))?;
        if req.mode != Mode::Publish {
            return Err((
                RejectCode::BadMode,
                "SRT playback is not offered: use LL-HLS or WHEP".into(),
            ));
        }
        let (app, key) = req.app_and_name(&ctx.app);
        if app != ctx.app {
            return Err((
                RejectCode::NotFound,
                format!("unknown application {app:?}; publish to {}/<key>", ctx.app),
            ));
        }
        let grant = compio::time::timeout(AUTH_TIMEOUT, ctx.auth.authorize(app, key))
            .await
            .map_err(|_| {
                (
                    RejectCode::Unavailable,
                    "authorisation timed out".to_owned(),
                )
            })?
            .map_err(|r| (RejectCode::Forbidden, r.reason))?;
        let conn = crate::rtmp_conn::next_connection_id();
        let kick = Shutdown::new();
        let a = ctx
            .registry
            .begin_publish(
                &grant.channel,
                &grant.channel_id,
                conn,
                kick.clone(),
                "srt",
                grant.transcode,
            )
            .map_err(|r| (RejectCode::Conflict, r.reason))?;
        a.stream
            .signed_playback
            .store(grant.signed_playback, std::sync::atomic::Ordering::Relaxed);
        ctx.registry.start_recording(&a, grant.record);
        ctx.registry.start_relays(&a, grant.destinations);
        if let Some(packaging) = a.packaging {
            let task = crate::hls_task::run(a.stream.clone(), packaging, ctx.registry.clone());
            compio::runtime::spawn(task).detach();
        }
        tracing::debug!(%peer, resumed = a.resumed, "SRT publish admitted");
        Ok(Publishing::new(a.stream, a.publisher, conn, kick))
    }

    /// Closes the connections of kicked publishers (all of them at shutdown).
    fn close_kicked(&self, all: bool) {
        let now = Instant::now();
        let kicked: Vec<SocketAddr> = self
            .publishing
            .borrow()
            .iter()
            .filter(|(_, p)| all || p.kick.is_triggered())
            .map(|(a, _)| *a)
            .collect();
        let mut l = self.listener.borrow_mut();
        for peer in kicked {
            tracing::info!(%peer, "SRT publisher closed by the node");
            l.close(now, peer);
        }
    }
}

/// Runs a shard's SRT socket until shutdown.
pub async fn run(shard: Rc<SrtShard>, shutdown: Shutdown) {
    compio::runtime::spawn(timers(shard.clone(), shutdown.clone())).detach();
    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    // The shard's datagram buffer, shared by its callers.
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
                shard
                    .listener
                    .borrow_mut()
                    .handle_datagram(Instant::now(), from, &buf[..n]);
                shard.timers_changed();
                shard.flush().await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "SRT receive failed");
                compio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        buf.clear();
    }
}

/// The listener's timers, kicks, and the goodbye at shutdown.
async fn timers(shard: Rc<SrtShard>, shutdown: Shutdown) {
    loop {
        let now = Instant::now();
        let due = shard.listener.borrow().poll_timeout();
        let stop = pin!(shutdown.wait());
        let woken = if due.is_none() && shard.publishing.borrow().is_empty() {
            // Nothing to time and nobody to kick: sleep until the listener changes.
            let changed = shard.timers_wake.listen();
            shard.timers_parked.set(true);
            let woken = select(changed, stop).await;
            shard.timers_parked.set(false);
            matches!(woken, Either::Left(_))
        } else {
            let wait = due.map_or(MAX_TICK, |t| t.saturating_duration_since(now).min(MAX_TICK));
            let sleep = pin!(compio::time::sleep(wait));
            matches!(select(sleep, stop).await, Either::Left(_))
        };
        if !woken {
            shard.close_kicked(true);
            shard.flush().await;
            return;
        }
        shard.close_kicked(false);
        shard.listener.borrow_mut().handle_timeout(Instant::now());
        shard.flush().await;
    }
}
