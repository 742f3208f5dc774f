//! The per-connection HTTP/1.1 driver: read, parse, answer, keep alive.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::{IntoInner, IoVectoredBuf};
use compio::io::{AsyncRead, AsyncWrite};
use compio::net::TcpStream;

use weir_hls::Rope;

use super::request::{Method, RequestParser};
use super::response::{Response, SegmentStream};
use crate::hooks::PublishAuth;
use crate::limits::TIMED_OUT;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::watchdog::{Phase, Progress, StopReason, Watchdog, send};
use crate::webrtc::WebrtcShard;

/// Histogram: seconds from a part becoming available to a waiting viewer's answer being
/// written (blocked reloads and preload-hint requests).
pub const WAKE_TO_DELIVERY: &str = "weir_hls_wake_to_delivery_seconds";
/// Most bytes a viewer's socket queues in the kernel that are not sent yet
/// (`TCP_NOTSENT_LOWAT`). Without it the kernel lets a response write complete into a
/// send buffer auto-tuned up to `tcp_wmem`'s maximum (4 MiB) whether or not the viewer
/// reads: a viewer that stopped reading pinned that much kernel memory, kept after the
/// connection closed, and its write never stalled for the write deadline to see. Data in
/// flight is bounded by the viewer's window, not by this, so throughput is unchanged.
pub const NOTSENT_LOWAT: u32 = 256 * 1024;
/// Bytes read per call.
const READ_BUF: usize = 2048;
/// Bodies up to this size are written with their head in one call.
const COALESCE_LIMIT: usize = 16 * 1024;
/// Bytes charged to the memory budget for an HTTP connection's own state, besides its
/// buffers: the connection task (the `serve` future, whose response-writing futures are
/// held inline) and its watchdog task and timer. The abuse test measured about 7 KiB of
/// RSS per open connection dribbling a request, kernel socket included; less the 2 KiB
/// read buffer (charged apart) and the kernel's share, 4 KiB is a round figure that does
/// not overclaim.
const CONN_STATE_BYTES: usize = 4 * 1024;

/// The deadlines of an HTTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From accept (first request) or from its first byte (later ones) to a complete
    /// request head and body. Bytes of a partial request do not extend it.
    pub head: Duration,
    /// Keep-alive: longest wait for the first byte of the next request.
    pub idle: Duration,
    /// Longest time a response write may make no progress (the peer stopped reading).
    pub write: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            write: Duration::from_secs(15),
        }
    }
}

/// The `deadline` label of an expired HTTP deadline.
fn label(phase: Phase) -> &'static str {
    match phase {
        Phase::Request => "head",
        p => p.label(),
    }
}

/// Serves requests on one connection until it closes, idles out, misses a deadline, or
/// the node stops.
pub async fn serve(
    mut stream: TcpStream,
    registry: Arc<Registry>,
    auth: Arc<dyn PublishAuth>,
    rtc: Rc<WebrtcShard>,
    shutdown: Shutdown,
    timeouts: HttpTimeouts,
) {
    // Request heads are small: a 2 KiB read buffer keeps idle viewers cheap (the
    // buffer is owned by the in-flight read), and `pending` only grows for pipelining.
    let mut pending: Vec<u8> = Vec::new();
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    // The memory budget is charged with the connection's buffers: `buf`, and `pending`,
    // which holds a request's head and its body (up to its `Content-Length`).
    let mut charge = registry.budget().charge(CONN_STATE_BYTES + buf.capacity());
    let held =
        |buf: &Vec<u8>, pending: &Vec<u8>| CONN_STATE_BYTES + buf.capacity() + pending.capacity();
    // Deadlines and node shutdown end the pending read or write (see `watchdog`).
    let watchdog = {
        let shutdown = shutdown.clone();
        let first = Instant::now() + timeouts.head;
        Watchdog::spawn(&stream, Phase::Request, first, async move {
            shutdown.wait().await
        })
    };
    loop {
        loop {
            match RequestParser.parse(&pending) {
                Ok(Some((mut req, head))) => {
                    // A body (WHIP/WHEP) follows the head: wait until all of it is here
                    // (still under the request deadline).
                    let Some(end) = head.checked_add(req.content_length) else {
                        return;
                    };
                    if pending.len() < end {
                        pending.reserve(end - pending.len());
                        charge.set(held(&buf, &pending));
                        break;
                    }
                    req.body = bytes::Bytes::copy_from_slice(&pending[head..end]);
                    req.peer = peer;
                    pending.drain(..end);
                    if pending.is_empty() && pending.capacity() > COALESCE_LIMIT {
                        // A body (a WHIP offer) was here: a kept-alive connection does not
                        // keep its buffer.
                        pending = Vec::new();
                        charge.set(held(&buf, &pending));
                    }
                    // The node prepares the answer (a blocking reload waits): no deadline.
                    watchdog.set(None);
                    let resp = super::origin::respond(&req, &registry, &*auth, &rtc).await;
                    metrics::counter!("weir_http_requests_total", "status" => resp.status.to_string())
                        .increment(1);
                    let keep = req.keep_alive && !shutdown.is_triggered();
                    let with_body = req.method != Method::Head;
                    let written = watchdog
                        .writing(timeouts.write, |p| {
                            write(&mut stream, &resp, with_body, keep, p)
                        })
                        .await;
                    if let Err(e) = written {
                        timed_out(&watchdog, &e);
                        return;
                    }
                    if let Some(at) = resp.available_at {
                        // Part available → its answer written to a viewer that waited.
                        metrics::histogram!(WAKE_TO_DELIVERY).record(at.elapsed().as_secs_f64());
                    }
                    if !keep {
                        return;
                    }
                    // Idle until the next request starts, unless it has already begun.
                    let now = Instant::now();
                    watchdog.set(Some(if pending.is_empty() {
                        (Phase::Idle, now + timeouts.idle)
                    } else {
                        (Phase::Request, now + timeouts.head)
                    }));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "bad HTTP request");
                    let resp = Response::error(e.status(), &e.to_string());
                    let _ = watchdog
                        .writing(timeouts.write, |p| {
                            write(&mut stream, &resp, true, false, p)
                        })
                        .await;
                    return;
                }
            }
        }
        buf.clear();
        let BufResult(res, back) = stream.read(buf).await;
        buf = back;
        if let Some(reason) = watchdog.reason() {
            if let StopReason::Expired(phase) = reason {
                metrics::counter!(TIMED_OUT, "listener" => "http", "deadline" => label(phase))
                    .increment(1);
                if phase == Phase::Request && !pending.is_empty() {
                    // A request started but did not arrive in time: say so.
                    tracing::debug!("HTTP request head not complete in time: 408");
                    let resp = Response::error(408, "request not received in time");
                    let _ = watchdog
                        .writing(timeouts.write, |p| {
                            write(&mut stream, &resp, true, false, p)
                        })
                        .await;
                }
            }
            return;
        }
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // The first byte of a request starts its deadline; later bytes do not
                // move it.
                if watchdog.phase() == Some(Phase::Idle) {
                    watchdog.set(Some((Phase::Request, Instant::now() + timeouts.head)));
                }
                pending.extend_from_slice(&buf[..n]);
                charge.set(held(&buf, &pending));
            }
        }
    }
}

/// Counts a response write ended by the write deadline.
fn timed_out(watchdog: &Watchdog, e: &std::io::Error) {
    if watchdog.reason() == Some(StopReason::Expired(Phase::Write)) {
        metrics::counter!(TIMED_OUT, "listener" => "http", "deadline" => "write").increment(1);
        tracing::debug!(error = %e, "HTTP response made no progress in time: connection reset");
    }
}

/// [`send`] for a vectored buffer.
async fn send_vectored<T: IoVectoredBuf>(
    stream: &mut TcpStream,
    mut buf: T,
    p: &Progress,
) -> std::io::Result<()> {
    let len = buf.total_len();
    let mut at = 0;
    while at < len {
        let BufResult(r, back) = stream.write_vectored(buf.slice(at)).await;
        buf = back.into_inner();
        match r? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => at += n,
        }
        p.made();
    }
    Ok(())
}

async fn write(
    stream: &mut TcpStream,
    resp: &Response,
    with_body: bool,
    keep_alive: bool,
    p: Progress,
) -> std::io::Result<()> {
    let mut head = resp.head(keep_alive);
    if let (Some(seg), true) = (&resp.segment_stream, with_body) {
        send(stream, head, &p).await?;
        return write_segment_stream(stream, seg, &p).await;
    }
    if !with_body || resp.body.is_empty() {
        return send(stream, head, &p).await;
    }
    if resp.body.len() <= COALESCE_LIMIT {
        for piece in resp.body.pieces() {
            head.extend_from_slice(piece);
        }
        return send(stream, head, &p).await;
    }
    // Head and body pieces go out with writev, at most MAX_IOVECS at a time.
    let pieces = resp.body.pieces().len();
    let mut head = Some(head);
    let mut at = 0;
    while at < pieces {
        let end = (at + MAX_IOVECS - 1).min(pieces);
        let batch = Wire {
            head: head.take().unwrap_or_default(),
            body: resp.body.clone(),
            pieces: at..end,
        };
        send_vectored(stream, batch, &p).await?;
        at = end;
    }
    Ok(())
}

/// Sends segment `seg.msn` with chunked transfer: the parts made so far at once, then
/// each part as it is made, until the segment is complete (or the stream ends, or a part
/// takes longer than the blocking limit: the response then ends short and the client
/// sees a truncated chunked body, not a complete-looking segment).
async fn write_segment_stream(
    stream: &mut TcpStream,
    seg: &SegmentStream,
    p: &Progress,
) -> std::io::Result<()> {
    let delivery = &seg.rendition.delivery;
    let mut sent = 0usize;
    loop {
        let snapshot = delivery.snapshot();
        let Some((parts, complete)) = snapshot.segment_parts(seg.msn) else {
            return Err(std::io::Error::other("segment left the window"));
        };
        for part in parts.iter().skip(sent) {
            let mut chunk = format!("{:x}\r\n", part.len()).into_bytes();
            for piece in part.pieces() {
                chunk.extend_from_slice(piece);
            }
            chunk.extend_from_slice(b"\r\n");
            p.made();
            send(stream, chunk, p).await?;
        }
        sent = sent.max(parts.len());
        if complete {
            p.made();
            return send(stream, b"0\r\n\r\n".to_vec(), p).await;
        }
        let limit = snapshot.target_duration().max(Duration::from_secs(1)) * 3;
        let needed = weir_hls::Position::after_part(seg.msn, sent as u64);
        // Waiting for the encoder is not the viewer's fault: no write deadline meanwhile.
        p.waiting();
        if delivery
            .wait_for(needed, Instant::now() + limit)
            .await
            .is_none()
        {
            return Err(std::io::Error::other("part did not appear in time"));
        }
    }
}

/// Most buffers per vectored write (the kernel's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 512;

/// A response head and a run of body pieces, written with one vectored write.
struct Wire {
    head: Vec<u8>,
    body: Rope,
    pieces: std::ops::Range<usize>,
}

impl IoVectoredBuf for Wire {
    fn iter_slice(&self) -> impl Iterator<Item = &[u8]> {
        let body = self.body.pieces().get(self.pieces.clone()).unwrap_or(&[]);
        std::iter::once(&self.head[..])
            .filter(|h| !h.is_empty())
            .chain(body.iter().map(|p| &p[..]))
    }
}
