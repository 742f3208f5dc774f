//! The relay driver: one destination of one broadcast, from DNS to `deleteStream`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use compio::net::{TcpStream, ToSocketAddrsAsync};
use event_listener::Event;
use futures_util::future::{Either, select};
use weir_bus::{BusEvent, LagPolicy, SubscribeOptions, Subscriber};
use weir_rtmp::{ClientConfig, ClientEvent, ClientOutput, ClientSession};

use super::bodies::FrameBodies;
use super::muxer::{MediaMessage, RelayMuxer};
use super::pacing::{self, AudioHold};
use super::policy::{AddressPolicy, Backoff};
use super::tls::{self, TlsLayer};
use super::{Endpoint, RelayConfig, RelayTarget};
use crate::hooks::{RelayReport, RelayState};
use crate::registry::{Registry, Stream};
use crate::shutdown::Shutdown;

/// Bitrate reports while live.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A connection up this long resets the back-off.
const STABLE: Duration = Duration::from_secs(60);
const READ_BUFFER: usize = 16 * 1024;

/// How one connection ended.
enum Ended {
    /// The broadcast ended; the destination was told.
    Broadcast,
    /// The destination was removed or changed (the destination was told, when live).
    Removed,
    /// Something went wrong; retry. The text is safe to show (no key).
    Retry(String),
    /// The destination can never work as configured.
    Fatal(String),
}

struct Relay {
    registry: Arc<Registry>,
    stream: Arc<Stream>,
    target: RelayTarget,
    config: RelayConfig,
    /// For `rtmps://`: the TLS client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Frame bodies shared with the broadcast's other relays on this shard.
    bodies: Rc<FrameBodies>,
    /// Set when the destination is removed or changed while live.
    stop: Shutdown,
}

impl Relay {
    fn report(&self, state: RelayState, reason: Option<String>, bitrate: u64) {
        self.registry.events().relay(
            &self.stream.info,
            RelayReport {
                destination_id: self.target.id.clone(),
                state,
                reason,
                bitrate,
            },
        );
    }
}

/// Runs the relay of `stream` to `target` until the broadcast ends, the destination is
/// found unusable, or `stop` says it was removed.
pub(super) async fn run(
    registry: Arc<Registry>,
    stream: Arc<Stream>,
    target: RelayTarget,
    bodies: Rc<FrameBodies>,
    stop: Shutdown,
) {
    let config = registry.relay_config().clone();
    let mut relay = Relay {
        registry,
        stream,
        target,
        config,
        tls: None,
        bodies,
        stop,
    };
    let endpoint = match Endpoint::parse(&relay.target.url, &relay.target.stream_key) {
        Ok(e) => e,
        Err(e) => return give_up(&relay, e.to_string()),
    };
    if endpoint.tls {
        match tls::client_config(relay.config.ca_file.as_deref()) {
            Ok(c) => relay.tls = Some(c),
            Err(e) => return give_up(&relay, e.to_string()),
        }
    }
    let seed = relay
        .target
        .id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let mut backoff = Backoff::new(
        relay.config.min_backoff,
        relay.config.max_backoff,
        STABLE,
        seed,
    );
    loop {
        if relay.stream.is_ended() || relay.stop.is_triggered() {
            relay.report(RelayState::Stopped, None, 0);
            return;
        }
        relay.report(RelayState::Connecting, None, 0);
        let started = Instant::now();
        let (ended, uptime) = connect_and_push(&relay, &endpoint).await;
        match ended {
            Ended::Broadcast => {
                tracing::info!(channel = %relay.stream.channel, destination = %relay.target.name, "relay ended with the broadcast");
                relay.report(RelayState::Stopped, None, 0);
                return;
            }
            Ended::Removed => {
                tracing::info!(channel = %relay.stream.channel, destination = %relay.target.name, "relay stopped: its destination was removed or changed");
                relay.report(RelayState::Stopped, None, 0);
                return;
            }
            Ended::Fatal(why) => return give_up(&relay, why),
            Ended::Retry(why) => {
                let delay = backoff.next_delay(uptime.unwrap_or_default());
                tracing::warn!(
                    channel = %relay.stream.channel, destination = %relay.target.name,
                    reason = %why, retry_in_ms = delay.as_millis() as u64,
                    attempt = backoff.failures(), attempt_secs = started.elapsed().as_secs(),
                    "relay lost its destination"
                );
                metrics::counter!("weir_relay_failures_total").increment(1);
                relay.report(RelayState::Retrying, Some(why), 0);
                // Sleep in short steps so an ended broadcast is noticed.
                let until = Instant::now() + delay;
                while Instant::now() < until && !relay.stream.is_ended() {
                    let step = until.saturating_duration_since(Instant::now());
                    let nap = compio::time::sleep(step.min(Duration::from_millis(250)));
                    if or_stopped(&relay.stop, nap).await.is_none() {
                        break;
                    }
                }
            }
        }
    }
}

/// Runs `f` unless the relay is told to leave first (`None` then).
async fn or_stopped<F: std::future::Future>(stop: &Shutdown, f: F) -> Option<F::Output> {
    match select(pin!(f), pin!(stop.wait())).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

fn give_up(relay: &Relay, why: String) {
    tracing::warn!(channel = %relay.stream.channel, destination = %relay.target.name, reason = %why, "relay gave up on a destination");
    metrics::counter!("weir_relay_failures_total").increment(1);
    relay.report(RelayState::Failed, Some(why), 0);
}

/// Resolves the destination and keeps the addresses the policy allows.
async fn resolve(endpoint: &Endpoint, policy: AddressPolicy) -> Result<Vec<SocketAddr>, Ended> {
    let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs_async()
        .await
        .map_err(|e| Ended::Retry(format!("cannot resolve {}: {e}", endpoint.host)))?
        .collect();
    let mut refusal = None;
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match policy.refusal(a.ip()) {
            Some(why) => {
                refusal = Some((a.ip(), why));
                false
            }
            None => true,
        })
        .collect();
    match (allowed.is_empty(), refusal) {
        (false, _) => Ok(allowed),
        (true, Some((ip, why))) => Err(Ended::Fatal(format!(
            "{} resolves to {ip}, {why}: refused (set relay allow_internal to permit it)",
            endpoint.host
        ))),
        (true, None) => Err(Ended::Retry(format!("{} has no address", endpoint.host))),
    }
}

/// What the reader task hands the relay.
#[derive(Default)]
struct Inbox {
    chunks: RefCell<VecDeque<io::Result<Vec<u8>>>>,
    event: Event,
}

async fn read_into(mut socket: TcpStream, inbox: Rc<Inbox>) {
    let mut buf = Vec::with_capacity(READ_BUFFER);
    loop {
        buf.clear();
        let BufResult(res, back) = socket.read(buf).await;
        buf = back;
        let item = match res {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the destination closed the connection",
            )),
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) => Err(e),
        };
        let last = item.is_err();
        inbox.chunks.borrow_mut().push_back(item);
        inbox.event.notify(1);
        if last {
            return;
        }
    }
}

/// Writes what the session has to send, within the write deadline: one vectored write
/// of every piece (shared frame bodies are not copied); through TLS, one record batch.
/// `out` is a reusable list of pieces, left empty.
async fn flush(
    socket: &mut TcpStream,
    session: &mut ClientSession,
    tls: &mut Option<TlsLayer>,
    events: &mut Vec<ClientEvent>,
    out: &mut Vec<Bytes>,
    timeout: Duration,
) -> Result<usize, Ended> {
    while let Some(o) = session.poll_output() {
        match o {
            ClientOutput::Transmit(b) => out.push(b),
            ClientOutput::Event(e) => events.push(e),
        }
    }
    if let Some(t) = tls {
        if out.is_empty() && !t.wants_write() {
            return Ok(0);
        }
        let plain = out.concat();
        out.clear();
        let sealed = t.encode(&plain).map_err(|e| Ended::Retry(e.to_string()))?;
        out.push(Bytes::from(sealed));
    }
    let n: usize = out.iter().map(Bytes::len).sum();
    if n == 0 {
        out.clear();
        return Ok(0);
    }
    let pieces = std::mem::take(out);
    let (res, back) = match compio::time::timeout(timeout, socket.write_vectored_all(pieces)).await
    {
        Ok(BufResult(r, back)) => (Ok(r), back),
        Err(e) => (Err(e), Vec::new()),
    };
    *out = back;
    out.clear();
    match res {
        Ok(Ok(())) => Ok(n),
        Ok(Err(e)) => Err(Ended::Retry(format!("write failed: {e}"))),
        Err(_) => Err(Ended::Retry(format!(
            "the destination read nothing for {} s",
            timeout.as_secs()
        ))),
    }
}

/// Feeds what the destination sent to the session (its answers go out, and its
/// events come, with the next [`flush`]).
fn take_input(
    inbox: &Inbox,
    session: &mut ClientSession,
    tls: &mut Option<TlsLayer>,
) -> Result<(), Ended> {
    loop {
        let Some(item) = inbox.chunks.borrow_mut().pop_front() else {
            return Ok(());
        };
        let mut data = item.map_err(|e| Ended::Retry(e.to_string()))?;
        if let Some(t) = tls {
            data = t.decode(&data).map_err(|e| Ended::Retry(e.to_string()))?;
        }
        session
            .handle_input(Instant::now(), &data)
            .map_err(|e| Ended::Retry(format!("RTMP error from the destination: {e}")))?;
    }
}

fn rejected(events: &[ClientEvent]) -> Option<Ended> {
    events.iter().find_map(|e| match e {
        ClientEvent::Rejected { code, description } => Some(Ended::Retry(format!(
            "the destination refused the stream: {code} {description}"
        ))),
        _ => None,
    })
}

/// One connection: connect, publish, push media until the broadcast ends or it fails.
/// Returns how it ended and, when it got to publishing, how long it was up.
async fn connect_and_push(relay: &Relay, endpoint: &Endpoint) -> (Ended, Option<Duration>) {
    let policy = AddressPolicy {
        allow_internal: relay.config.allow_internal,
    };
    let cfg = &relay.config;
    let deadline = Instant::now() + cfg.connect_timeout;
    let connected = or_stopped(
        &relay.stop,
        connect(endpoint, policy, cfg.connect_timeout, deadline),
    )
    .await;
    let mut socket = match connected {
        None => return (Ended::Removed, None),
        Some(Err(e)) => return (e, None),
        Some(Ok(s)) => s,
    };
    let _ = socket.set_nodelay(true);
    // Without a cap on unsent bytes the kernel absorbs megabytes for a destination that
    // stopped reading, and the write deadline would not see it stall.
    let _ = socket2::SockRef::from(&socket).set_tcp_notsent_lowat(crate::http::conn::NOTSENT_LOWAT);
    let mut tls = match &relay.tls {
        Some(config) => match TlsLayer::new(config.clone(), &endpoint.host) {
            Ok(t) => Some(t),
            Err(e) => return (Ended::Fatal(e.to_string()), None),
        },
        None => None,
    };
    let inbox = Rc::new(Inbox::default());
    let reader = compio::runtime::spawn(read_into(socket.clone(), inbox.clone()));
    let result = push(relay, endpoint, &mut socket, &mut tls, &inbox, deadline).await;
    drop(reader); // cancels the pending read
    let _ = socket.shutdown().await;
    result
}

/// DNS (within `dns_timeout`), the address policy, then TCP to the first address that
/// answers before `deadline`.
async fn connect(
    endpoint: &Endpoint,
    policy: AddressPolicy,
    dns_timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, Ended> {
    let addrs = match compio::time::timeout(dns_timeout, resolve(endpoint, policy)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(Ended::Retry("DNS timed out".into())),
    };
    let mut last_err = String::new();
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        match compio::time::timeout(left, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last_err = format!("cannot connect to {addr}: {e}"),
            Err(_) => last_err = format!("connecting to {addr} timed out"),
        }
    }
    Err(Ended::Retry(last_err))
}

async fn push(
    relay: &Relay,
    endpoint: &Endpoint,
    socket: &mut TcpStream,
    tls: &mut Option<TlsLayer>,
    inbox: &Inbox,
    deadline: Instant,
) -> (Ended, Option<Duration>) {
    let cfg = &relay.config;
    let mut session = ClientSession::new(ClientConfig {
        app: endpoint.app.clone(),
        tc_url: endpoint.tc_url.clone(),
        stream_name: endpoint.stream_name.clone(),
        out_chunk_size: 4096,
    });
    let mut events = Vec::new();
    let mut out = Vec::new();
    // Handshake, connect, createStream, publish.
    loop {
        if let Err(e) = take_input(inbox, &mut session, tls) {
            return (e, None);
        }
        let flushed = flush(
            socket,
            &mut session,
            tls,
            &mut events,
            &mut out,
            cfg.write_timeout,
        );
        if let Err(e) = flushed.await {
            return (e, None);
        }
        if let Some(e) = rejected(&events) {
            return (e, None);
        }
        if session.is_publishing() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (
                Ended::Retry("no NetStream.Publish.Start within the connect timeout".into()),
                None,
            );
        }
        let listener = inbox.event.listen();
        if inbox.chunks.borrow().is_empty() {
            let wait = compio::time::timeout(left, listener);
            if or_stopped(&relay.stop, wait).await.is_none() {
                return (Ended::Removed, None);
            }
        }
    }
    events.clear();
    // Publishing: from the bus's last key frame on.
    let mut subscriber = match relay.stream.bus.subscribe(SubscribeOptions {
        policy: LagPolicy::SkipToKeyframe,
        max_frames: 4096,
        max_bytes: cfg.max_queue_bytes,
    }) {
        Ok(s) => s,
        Err(e) => {
            return (
                Ended::Retry(format!("cannot join the broadcast: {e}")),
                None,
            );
        }
    };
    let live_at = Instant::now();
    tracing::info!(channel = %relay.stream.channel, destination = %relay.target.name, "relay is live");
    relay.report(RelayState::Live, None, 0);
    let ended = pump(relay, socket, tls, inbox, &mut session, &mut subscriber).await;
    (ended, Some(live_at.elapsed()))
}

async fn pump(
    relay: &Relay,
    socket: &mut TcpStream,
    tls: &mut Option<TlsLayer>,
    inbox: &Inbox,
    session: &mut ClientSession,
    subscriber: &mut Subscriber,
) -> Ended {
    let cfg = &relay.config;
    let mut muxer = RelayMuxer::sharing(relay.bodies.clone());
    let mut bus_events = Vec::new();
    let mut messages: Vec<MediaMessage> = Vec::new();
    let mut client_events = Vec::new();
    let mut out = Vec::new();
    let bytes_total = metrics::counter!("weir_relay_bytes_total");
    let (mut sent, mut since) = (0u64, Instant::now());
    // Bitrate reports on whole seconds, so the broadcast's relays report together.
    let next_report =
        |now: Instant| pacing::on_grid(now + REPORT_EVERY, now, Duration::from_secs(1));
    let mut report_at = next_report(Instant::now());
    let mut pacing = AudioHold::new(cfg.audio_hold);
    // One stop listener for the whole connection (not one per wake-up).
    let mut stopped = pin!(relay.stop.wait());
    loop {
        if let Err(e) = take_input(inbox, session, tls) {
            return e;
        }
        let closed = subscriber.drain_into(&mut bus_events).is_err();
        let removed = relay.stop.is_triggered();
        let mut ended = closed || removed;
        for e in bus_events.drain(..) {
            match &e {
                BusEvent::Ended => ended = true,
                BusEvent::Skipped { frames } => {
                    metrics::counter!("weir_relay_skipped_frames_total").increment(*frames);
                    tracing::debug!(destination = %relay.target.name, frames, "relay fell behind: skipped to a key frame");
                }
                _ => {}
            }
            muxer.handle_event(&e, &mut messages);
        }
        let now = Instant::now();
        let flowing = !messages.is_empty();
        for m in messages.drain(..) {
            pacing.queued(m.kind, now);
            session.send_shared_media(m.kind, m.timestamp_ms, &m.payload);
        }
        if ended {
            if let Some(m) = muxer.finish() {
                session.send_shared_media(m.kind, m.timestamp_ms, &m.payload);
            }
            session.unpublish();
            let flushed = flush(
                socket,
                session,
                tls,
                &mut client_events,
                &mut out,
                cfg.write_timeout,
            );
            let _ = flushed.await;
            return if removed {
                Ended::Removed
            } else {
                Ended::Broadcast
            };
        }
        let written = if pacing.write_now(now) {
            flush(
                socket,
                session,
                tls,
                &mut client_events,
                &mut out,
                cfg.write_timeout,
            )
            .await
        } else {
            Ok(0)
        };
        match written {
            Ok(n) => {
                sent += n as u64;
                bytes_total.increment(n as u64);
            }
            Err(e) => return e,
        }
        if let Some(e) = rejected(&client_events) {
            return e;
        }
        client_events.clear();
        let now = Instant::now();
        if now >= report_at {
            let secs = since.elapsed().as_secs_f64();
            relay.report(RelayState::Live, None, (sent as f64 * 8.0 / secs) as u64);
            (sent, since, report_at) = (0, now, next_report(now));
        }
        if !cfg.batch.is_zero() && flowing {
            // Media is flowing: the next write is one batch time on, on the grid, with
            // whatever came meanwhile. No wake-up per frame, and the broadcast's relays
            // wake together. (What the destination sends waits for it too.)
            let at = pacing::next_batch(now, cfg.batch);
            let _ = select(pin!(compio::time::sleep_until(at)), stopped.as_mut()).await;
            continue;
        }
        let listener = inbox.event.listen();
        if inbox.chunks.borrow().is_empty() {
            let (ready, listener) = (pin!(subscriber.ready()), pin!(listener));
            let woken = select(select(ready, listener), stopped.as_mut());
            // Held audio goes out by its deadline even if nothing else comes.
            // (Not on the grid: rounded down, the wait could end before the hold does.)
            let held = pacing
                .deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            let woken = async move {
                match held {
                    Some(left) => compio::time::timeout(left, woken).await.ok(),
                    None => Some(woken.await),
                }
            };
            let report = pin!(compio::time::sleep_until(report_at));
            match select(pin!(woken), report).await {
                // Media is waiting: let what follows within the batch time join it.
                Either::Left((Some(Either::Left((Either::Left(_), _))), _))
                    if !cfg.batch.is_zero() =>
                {
                    compio::time::sleep_until(pacing::next_batch(Instant::now(), cfg.batch)).await;
                }
                // The report is due, or something else came: see at the top.
                _ => {}
            }
        }
    }
}
