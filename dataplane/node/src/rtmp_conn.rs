//! The RTMP ingest driver: socket ⇄ `ServerSession` ⇄ `FlvDemuxer` ⇄ track gate ⇄ packager.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;
use futures_util::future::{Either, select};
use weir_flv::{DemuxEvent, FlvDemuxer};
use weir_rtmp::{MediaKind, ServerConfig, ServerEvent, ServerOutput, ServerSession};

use crate::gate::{GateOutput, TrackGate};
use crate::registry::{PublishAuth, Registry, Stream, wallclock_ms};
use crate::shutdown::Shutdown;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// What an RTMP connection needs from its shard.
pub struct RtmpContext {
    /// The node's streams.
    pub registry: Arc<Registry>,
    /// Publish authorisation (stream keys).
    pub auth: Arc<dyn PublishAuth>,
    /// The application name publishers must use.
    pub app: String,
    /// Silence after which the connection is dropped.
    pub idle_timeout: Duration,
    /// Node shutdown.
    pub shutdown: Shutdown,
}

/// A live publish on this connection.
struct Publishing {
    stream: Arc<Stream>,
    stream_id: u32,
    demux: FlvDemuxer,
    gate: TrackGate,
    gated: Vec<GateOutput>,
}

/// Why a connection ended (logged once).
enum Close {
    Eof,
    Idle,
    Kicked,
    Io(std::io::Error),
    Protocol(String),
    Refused,
}

/// Drives one RTMP connection to its end.
pub async fn serve(mut socket: TcpStream, peer: std::net::SocketAddr, ctx: Arc<RtmpContext>) {
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let kick = Shutdown::new();
    let mut session = ServerSession::new(ServerConfig::default());
    let mut publishing: Option<Publishing> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let _ = socket.set_nodelay(true);
    metrics::gauge!("weir_rtmp_connections").increment(1.0);

    let close = loop {
        buf.clear();
        let outcome = {
            let read = pin!(compio::time::timeout(ctx.idle_timeout, socket.read(buf)));
            let stop = pin!(async {
                let a = pin!(kick.wait());
                let b = pin!(ctx.shutdown.wait());
                select(a, b).await;
            });
            match select(read, stop).await {
                Either::Left((Ok(r), _)) => Ok(r),
                Either::Left((Err(_), _)) => Err(Close::Idle),
                Either::Right(_) => Err(Close::Kicked),
            }
        };
        let BufResult(res, back) = match outcome {
            Ok(r) => r,
            Err(close) => break close,
        };
        buf = back;
        let n = match res {
            Ok(0) => break Close::Eof,
            Ok(n) => n,
            Err(e) => break Close::Io(e),
        };
        metrics::counter!("weir_rtmp_ingest_bytes_total").increment(n as u64);
        if let Err(e) = session.handle_input(Instant::now(), &buf[..n]) {
            break Close::Protocol(e.to_string());
        }
        match drain(&mut session, &mut publishing, conn, &kick, &ctx, peer) {
            Ok(out) => {
                if !out.is_empty() {
                    let BufResult(r, _) = socket.write_all(out).await;
                    if let Err(e) = r {
                        break Close::Io(e);
                    }
                }
            }
            Err((out, close)) => {
                let BufResult(_, _) = socket.write_all(out).await;
                break close;
            }
        }
    };

    if let Some(p) = publishing.take() {
        ctx.registry.end_publish(&p.stream, conn, Instant::now());
        tracing::info!(channel = %p.stream.channel, %peer, "publisher left");
    }
    metrics::gauge!("weir_rtmp_connections").decrement(1.0);
    match close {
        Close::Eof | Close::Refused => tracing::debug!(%peer, "RTMP connection closed"),
        Close::Idle => tracing::info!(%peer, "RTMP connection idle: closed"),
        Close::Kicked => tracing::info!(%peer, "RTMP connection closed by the node"),
        Close::Io(e) => tracing::info!(%peer, error = %e, "RTMP connection I/O error"),
        Close::Protocol(e) => {
            metrics::counter!("weir_rtmp_protocol_errors_total").increment(1);
            tracing::warn!(%peer, error = %e, "RTMP protocol error: connection closed");
        }
    }
}

/// Runs the session's outputs; returns bytes to write, or bytes and a reason to close.
fn drain(
    session: &mut ServerSession,
    publishing: &mut Option<Publishing>,
    conn: u64,
    kick: &Shutdown,
    ctx: &RtmpContext,
    peer: std::net::SocketAddr,
) -> Result<Vec<u8>, (Vec<u8>, Close)> {
    let mut out = Vec::new();
    while let Some(o) = session.poll_output() {
        match o {
            ServerOutput::Transmit(b) => out.extend_from_slice(&b),
            ServerOutput::Event(ev) => match ev {
                ServerEvent::Connected { app, .. } => {
                    tracing::debug!(%peer, %app, "RTMP connect");
                }
                ServerEvent::PublishRequested {
                    stream_id,
                    app,
                    name,
                    ..
                } => {
                    if publishing.is_some() {
                        session.reject_publish(
                            stream_id,
                            "NetStream.Publish.BadName",
                            "one publish per connection",
                        );
                        continue;
                    }
                    match admit(ctx, &app, &name, conn, kick) {
                        Ok((stream, resumed)) => {
                            tracing::info!(
                                channel = %stream.channel, %peer, resumed,
                                "publishing started"
                            );
                            metrics::counter!("weir_publishes_total", "result" => "accepted")
                                .increment(1);
                            session.accept_publish(stream_id);
                            *publishing = Some(Publishing {
                                stream,
                                stream_id,
                                demux: FlvDemuxer::new(),
                                gate: TrackGate::new(),
                                gated: Vec::new(),
                            });
                        }
                        Err(refusal) => {
                            tracing::warn!(
                                %peer, %app, code = refusal.code, reason = %refusal.reason,
                                "publish refused"
                            );
                            metrics::counter!("weir_publishes_total", "result" => "refused")
                                .increment(1);
                            session.reject_publish(stream_id, refusal.code, &refusal.reason);
                            while let Some(o) = session.poll_output() {
                                if let ServerOutput::Transmit(b) = o {
                                    out.extend_from_slice(&b);
                                }
                            }
                            return Err((out, Close::Refused));
                        }
                    }
                }
                ServerEvent::Media {
                    stream_id,
                    kind,
                    timestamp,
                    payload,
                } => {
                    if let Some(p) = publishing.as_mut().filter(|p| p.stream_id == stream_id) {
                        ingest(p, kind, timestamp, &payload);
                    }
                }
                ServerEvent::Unpublished { stream_id } => {
                    if let Some(p) = publishing.take_if(|p| p.stream_id == stream_id) {
                        ctx.registry.end_publish(&p.stream, conn, Instant::now());
                        tracing::info!(channel = %p.stream.channel, %peer, "publisher unpublished");
                    }
                }
            },
        }
    }
    Ok(out)
}

fn admit(
    ctx: &RtmpContext,
    app: &str,
    name: &str,
    conn: u64,
    kick: &Shutdown,
) -> Result<(Arc<Stream>, bool), crate::registry::PublishRefusal> {
    if app.trim_matches('/') != ctx.app {
        return Err(crate::registry::PublishRefusal {
            code: "NetStream.Publish.BadName",
            reason: format!("unknown application {app:?}; publish to /{}", ctx.app),
        });
    }
    // OBS and ffmpeg may append a query string to the key.
    let key = name.split('?').next().unwrap_or(name);
    let channel = ctx.auth.authorize(app, key)?;
    let a = ctx.registry.begin_publish(&channel, conn, kick.clone())?;
    Ok((a.stream, a.resumed))
}

/// Demuxes one media message and packages what comes out.
fn ingest(p: &mut Publishing, kind: MediaKind, timestamp: u32, payload: &Bytes) {
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
            DemuxEvent::Track(t) => p.gate.on_track(t, &mut p.gated),
            DemuxEvent::Frame(f) => p.gate.on_frame(f, &mut p.gated),
            DemuxEvent::Metadata(_) => {}
        }
    }
    if p.gated.is_empty() {
        return;
    }
    let now = wallclock_ms();
    let mut changed = false;
    {
        let mut st = p.stream.state.lock();
        for out in p.gated.drain(..) {
            match out {
                GateOutput::Tracks(v, a) => st.hls.set_tracks(v, a),
                GateOutput::Frame(f) => changed |= st.hls.push_frame(now, f),
            }
        }
    }
    if changed {
        p.stream.notify();
    }
}
