//! The RTMP ingest driver: socket ⇄ `ServerSession` ⇄ `FlvDemuxer` ⇄ track gate ⇄ bus.
//!
//! It only parses and publishes; admission is the registry's, packaging the bus
//! subscribers' (see `hls_task`).

use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::BufResult;
use compio::io::AsyncRead;
use compio::net::TcpStream;
use futures_util::future::select;
use weir_flv::{DemuxEvent, FlvDemuxer};
use weir_rtmp::{MediaKind, ServerConfig, ServerEvent, ServerOutput, ServerSession};

use crate::gate::{GateOutput, TrackGate};
use crate::hooks::{PublishAuth, PublishRefusal};
use crate::limits::{ConnLimits, LogLimiter, TIMED_OUT};
use crate::pacer::Pacer;
use crate::registry::{Admission, Registry, Stream};
use crate::shutdown::Shutdown;
use crate::watchdog::{Phase, StopReason, Watchdog, send};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A node-unique id for a publishing connection (RTMP or WHIP).
pub fn next_connection_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

/// What an RTMP connection needs from its shard.
pub struct RtmpContext {
    /// The node's streams.
    pub registry: Arc<Registry>,
    /// Publish authorisation (stream keys).
    pub auth: Arc<dyn PublishAuth>,
    /// The application name publishers must use.
    pub app: String,
    /// Time without a complete message after which a publishing connection is dropped.
    pub idle_timeout: Duration,
    /// From accept to an accepted publish (handshake, `connect`, `publish`).
    pub publish_timeout: Duration,
    /// Longest time a write to the peer may make no progress.
    pub write_timeout: Duration,
    /// Largest command or data message (and, before publishing, any message).
    pub max_command_bytes: usize,
    /// Per-address and node-wide RTMP connection limits.
    pub limits: Arc<ConnLimits>,
    /// Node shutdown.
    pub shutdown: Shutdown,
}

/// A live publish on this connection.
struct Publishing {
    stream: Arc<Stream>,
    publisher: weir_bus::Publisher,
    stream_id: u32,
    demux: FlvDemuxer,
    gate: TrackGate,
    gated: Vec<GateOutput>,
}

/// A publish request waiting for authorisation.
struct PendingPublish {
    stream_id: u32,
    app: String,
    name: String,
}

/// Bytes read at most per call once publishing.
const READ_BUFFER: usize = 64 * 1024;
/// Bytes read at most per call before (handshake and commands): a connection that is
/// not publishing holds a small buffer.
const SETUP_READ_BUFFER: usize = 4 * 1024;

/// Bytes charged to the memory budget for an RTMP connection's own state, besides its
/// buffers: the connection task and its watchdog (as for HTTP, a round figure under
/// what an open connection was measured to cost), and once publishing its demuxer and
/// track gate, which hold no media between reads.
const CONN_STATE_BYTES: usize = 4 * 1024;

/// How long a publish may wait for its authorisation.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection ended (logged once).
enum Close {
    Eof,
    Idle,
    /// Handshake, `connect` and `publish` not done within the publish deadline.
    NotPublished,
    /// A write made no progress within the write deadline.
    WriteStalled,
    Kicked,
    Io(std::io::Error),
    Protocol(String),
    Refused,
}

/// Drives one RTMP connection to its end.
pub async fn serve(
    mut socket: TcpStream,
    peer: std::net::SocketAddr,
    ctx: Arc<RtmpContext>,
    pacer: Rc<Pacer>,
) {
    let conn = next_connection_id();
    let kick = Shutdown::new();
    let mut session = ServerSession::new(ServerConfig {
        max_command_size: ctx.max_command_bytes,
        ..ServerConfig::default()
    });
    let mut publishing: Option<Publishing> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(SETUP_READ_BUFFER);
    let mut progress = session.progress();
    // The memory budget is charged with the read buffer and what the session holds
    // between reads (partial messages, bounded by its limits).
    let held = |buf: &Vec<u8>, session: &ServerSession| {
        CONN_STATE_BYTES + buf.capacity() + session.buffered_bytes()
    };
    let mut charge = ctx.registry.budget().charge(held(&buf, &session));
    let _ = socket.set_nodelay(true);
    metrics::gauge!("weir_rtmp_connections").increment(1.0);
    let ingest_bytes = metrics::counter!("weir_rtmp_ingest_bytes_total");

    // Kicks, node shutdown and deadlines end the pending read (or write) from outside
    // (see `watchdog`), so a read costs no timer or signal polling. Until a publish is
    // accepted the deadline is fixed from accept; then it is the idle time-out, counted
    // from the last complete message (bytes that complete nothing do not count).
    let watchdog = {
        let (kick, shutdown) = (kick.clone(), ctx.shutdown.clone());
        let first = Instant::now() + ctx.publish_timeout;
        Watchdog::spawn(&socket, Phase::Request, first, async move {
            let a = pin!(kick.wait());
            let b = pin!(shutdown.wait());
            select(a, b).await;
        })
    };

    let close = loop {
        buf.clear();
        let BufResult(res, back) = socket.read(buf).await;
        buf = back;
        match watchdog.reason() {
            Some(StopReason::Signalled) => break Close::Kicked,
            Some(StopReason::Expired(Phase::Idle)) => break Close::Idle,
            Some(StopReason::Expired(Phase::Request)) => break Close::NotPublished,
            Some(StopReason::Expired(Phase::Write)) => break Close::WriteStalled,
            None => {}
        }
        let n = match res {
            Ok(0) => break Close::Eof,
            Ok(n) => n,
            Err(e) => break Close::Io(e),
        };
        ingest_bytes.increment(n as u64);
        let now = Instant::now();
        if let Err(e) = session.handle_input(now, &buf[..n]) {
            break Close::Protocol(e.to_string());
        }
        if session.progress() != progress {
            progress = session.progress();
            if publishing.is_some() {
                watchdog.set(Some((Phase::Idle, now + ctx.idle_timeout)));
            }
        }
        let mut out = Vec::new();
        let mut pending = drain(&mut session, &mut publishing, conn, &ctx, peer, &mut out);
        // A publish request: authorise it (possibly a round trip), answer, go on draining.
        let mut refused = false;
        while let Some(req) = pending.take() {
            // Authorisation has a time-out of its own: no deadline meanwhile.
            let deadline = watchdog.deadline();
            watchdog.set(None);
            let verdict = authorize(&ctx, &req, conn, &kick).await;
            watchdog.set(deadline);
            match verdict {
                Ok(admission) => {
                    let Admission {
                        stream,
                        publisher,
                        resumed,
                        packaging,
                    } = admission;
                    tracing::info!(channel = %stream.channel, %peer, resumed, "publishing started");
                    metrics::counter!("weir_publishes_total", "result" => "accepted").increment(1);
                    if let Some(packaging) = packaging {
                        let task =
                            crate::hls_task::run(stream.clone(), packaging, ctx.registry.clone());
                        compio::runtime::spawn(task).detach();
                    }
                    session.accept_publish(req.stream_id);
                    watchdog.set(Some((Phase::Idle, Instant::now() + ctx.idle_timeout)));
                    buf.reserve(READ_BUFFER);
                    publishing = Some(Publishing {
                        stream,
                        publisher,
                        stream_id: req.stream_id,
                        demux: FlvDemuxer::new(),
                        gate: TrackGate::new(),
                        gated: Vec::new(),
                    });
                    pending = drain(&mut session, &mut publishing, conn, &ctx, peer, &mut out);
                }
                Err(refusal) => {
                    crate::limits::log_refused_publish(
                        "rtmp",
                        &peer,
                        &refusal.code,
                        &refusal.reason,
                    );
                    metrics::counter!("weir_publishes_total", "result" => "refused").increment(1);
                    session.reject_publish(req.stream_id, refusal.code, &refusal.reason);
                    while let Some(o) = session.poll_output() {
                        if let ServerOutput::Transmit(b) = o {
                            out.extend_from_slice(&b);
                        }
                    }
                    refused = true;
                }
            }
        }
        if !out.is_empty() {
            let sock = &mut socket;
            let r = watchdog
                .writing(
                    ctx.write_timeout,
                    |p| async move { send(sock, out, &p).await },
                )
                .await;
            if let Err(e) = r {
                if watchdog.reason() == Some(StopReason::Expired(Phase::Write)) {
                    break Close::WriteStalled;
                }
                break Close::Io(e);
            }
        }
        if refused {
            break Close::Refused;
        }
        charge.set(held(&buf, &session));
        // A busy shard lets a publisher's frames queue up a little (see `pacer`); a read
        // that filled half the buffer means more is waiting: no pause then.
        if publishing.is_some() && n < READ_BUFFER / 2 {
            let pause = pacer.pause();
            if !pause.is_zero() {
                compio::time::sleep(pause).await;
            }
        }
    };

    if let Some(p) = publishing.take() {
        let stream = p.stream.clone();
        drop(p); // the bus hears that the publisher left
        ctx.registry.end_publish(&stream, conn, Instant::now());
        tracing::info!(channel = %stream.channel, %peer, "publisher left");
    }
    metrics::gauge!("weir_rtmp_connections").decrement(1.0);
    match close {
        Close::Eof | Close::Refused => tracing::debug!(%peer, "RTMP connection closed"),
        Close::Idle => {
            metrics::counter!(TIMED_OUT, "listener" => "rtmp", "deadline" => "idle").increment(1);
            tracing::info!(%peer, "RTMP connection idle (no complete message): closed");
        }
        Close::NotPublished => {
            metrics::counter!(TIMED_OUT, "listener" => "rtmp", "deadline" => "publish")
                .increment(1);
            // Debug only: under a flood of such connections the metric tells.
            tracing::debug!(
                %peer,
                "RTMP handshake, connect and publish not done in time: closed"
            );
        }
        Close::WriteStalled => {
            metrics::counter!(TIMED_OUT, "listener" => "rtmp", "deadline" => "write").increment(1);
            tracing::info!(%peer, "RTMP peer stopped reading: connection reset");
        }
        Close::Kicked => tracing::info!(%peer, "RTMP connection closed by the node"),
        Close::Io(e) => tracing::info!(%peer, error = %e, "RTMP connection I/O error"),
        Close::Protocol(e) => {
            metrics::counter!("weir_rtmp_protocol_errors_total").increment(1);
            // Garbage from a flood of connections must not flood the log.
            static LOG: std::sync::LazyLock<LogLimiter> =
                std::sync::LazyLock::new(|| LogLimiter::new(Duration::from_secs(1)));
            match LOG.allow() {
                Some(more) => tracing::warn!(
                    %peer, error = %e, errors_since_last_line = more,
                    "RTMP protocol error: connection closed"
                ),
                None => {
                    tracing::debug!(%peer, error = %e, "RTMP protocol error: connection closed")
                }
            }
        }
    }
}

/// Runs the session's outputs into `out` until it is idle or a publish needs authorising.
/// Frames demuxed on the way are published at the end, as one batch.
fn drain(
    session: &mut ServerSession,
    publishing: &mut Option<Publishing>,
    conn: u64,
    ctx: &RtmpContext,
    peer: std::net::SocketAddr,
    out: &mut Vec<u8>,
) -> Option<PendingPublish> {
    let pending = drain_outputs(session, publishing, conn, ctx, peer, out);
    if let Some(p) = publishing.as_mut() {
        publish(p);
    }
    pending
}

fn drain_outputs(
    session: &mut ServerSession,
    publishing: &mut Option<Publishing>,
    conn: u64,
    ctx: &RtmpContext,
    peer: std::net::SocketAddr,
    out: &mut Vec<u8>,
) -> Option<PendingPublish> {
    while let Some(o) = session.poll_output() {
        match o {
            ServerOutput::Transmit(b) => out.extend_from_slice(&b),
            ServerOutput::Event(ServerEvent::Connected { app, .. }) => {
                tracing::debug!(%peer, %app, "RTMP connect");
            }
            ServerOutput::Event(ServerEvent::PublishRequested {
                stream_id,
                app,
                name,
                ..
            }) => {
                if publishing.is_some() {
                    session.reject_publish(
                        stream_id,
                        "NetStream.Publish.BadName",
                        "one publish per connection",
                    );
                    continue;
                }
                return Some(PendingPublish {
                    stream_id,
                    app,
                    name,
                });
            }
            ServerOutput::Event(ServerEvent::Media {
                stream_id,
                kind,
                timestamp,
                payload,
            }) => {
                if let Some(p) = publishing.as_mut().filter(|p| p.stream_id == stream_id) {
                    demux(p, kind, timestamp, &payload);
                }
            }
            ServerOutput::Event(ServerEvent::Unpublished { stream_id }) => {
                if let Some(mut p) = publishing.take_if(|p| p.stream_id == stream_id) {
                    publish(&mut p);
                    let stream = p.stream.clone();
                    drop(p); // the bus hears that the publisher left
                    ctx.registry.end_publish(&stream, conn, Instant::now());
                    tracing::info!(channel = %stream.channel, %peer, "publisher unpublished");
                }
            }
        }
    }
    None
}

/// Checks the application and key, then claims the channel.
async fn authorize(
    ctx: &RtmpContext,
    req: &PendingPublish,
    conn: u64,
    kick: &Shutdown,
) -> Result<Admission, PublishRefusal> {
    if req.app.trim_matches('/') != ctx.app {
        return Err(PublishRefusal {
            code: "NetStream.Publish.BadName",
            reason: format!("unknown application {:?}; publish to /{}", req.app, ctx.app),
        });
    }
    // OBS and ffmpeg may append a query string to the key.
    let key = req.name.split('?').next().unwrap_or(&req.name);
    let grant = compio::time::timeout(AUTH_TIMEOUT, ctx.auth.authorize(&req.app, key))
        .await
        .map_err(|_| PublishRefusal {
            code: "NetStream.Publish.Failed",
            reason: "authorisation timed out".to_owned(),
        })??;
    let a = ctx.registry.begin_publish(
        &grant.channel,
        &grant.channel_id,
        conn,
        kick.clone(),
        "rtmp",
        grant.transcode,
    )?;
    a.stream
        .signed_playback
        .store(grant.signed_playback, std::sync::atomic::Ordering::Relaxed);
    ctx.registry.start_recording(&a, grant.record);
    ctx.registry.start_relays(&a, grant.destinations);
    Ok(a)
}

/// Demuxes one media message; what comes through the gate waits in `p.gated`.
fn demux(p: &mut Publishing, kind: MediaKind, timestamp: u32, payload: &Bytes) {
    let events = match kind {
        MediaKind::Video => p.demux.push_video(timestamp, payload),
        MediaKind::Audio => p.demux.push_audio(timestamp, payload),
        MediaKind::Data => p.demux.push_data(payload),
    };
    let events = match events {
        Ok(ev) => ev,
        Err(e) => {
            metrics::counter!("weir_flv_errors_total").increment(1);
            tracing::debug!(channel = %p.stream.channel, error = %e, "bad FLV tag skipped");
            return;
        }
    };
    for ev in events {
        match ev {
            DemuxEvent::Track(id, t) => p.gate.on_track(id, t, &mut p.gated),
            DemuxEvent::Frame(f) => p.gate.on_frame(f, &mut p.gated),
            DemuxEvent::Metadata(_) => {}
        }
    }
}

/// Publishes what came through the gate as one batch.
fn publish(p: &mut Publishing) {
    crate::gate::publish(&mut p.gated, &mut p.publisher);
}
