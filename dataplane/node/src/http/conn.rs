//! The per-connection HTTP/1.1 driver: read, parse, answer, keep alive.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::IoVectoredBuf;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;

use weir_hls::Rope;

use super::request::{Method, RequestParser};
use super::response::{Response, SegmentStream};
use crate::hooks::PublishAuth;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::watchdog::Watchdog;
use crate::webrtc::WebrtcShard;

/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Histogram: seconds from a part becoming available to a waiting viewer's answer being
/// written (blocked reloads and preload-hint requests).
pub const WAKE_TO_DELIVERY: &str = "weir_hls_wake_to_delivery_seconds";
/// Bytes read per call.
const READ_BUF: usize = 2048;
/// Bodies up to this size are written with their head in one call.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Serves requests on one connection until it closes, idles out, or the node stops.
pub async fn serve(
    mut stream: TcpStream,
    registry: Arc<Registry>,
    auth: Arc<dyn PublishAuth>,
    rtc: Rc<WebrtcShard>,
    shutdown: Shutdown,
) {
    // Request heads are small: a 2 KiB read buffer keeps idle viewers cheap (the
    // buffer is owned by the in-flight read), and `pending` only grows for pipelining.
    let mut pending: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    // Idle time-out and node shutdown end the pending read (see `watchdog`).
    let watchdog = {
        let shutdown = shutdown.clone();
        Watchdog::spawn(&stream, IDLE_TIMEOUT, async move { shutdown.wait().await })
    };
    loop {
        loop {
            match RequestParser.parse(&pending) {
                Ok(Some((mut req, head))) => {
                    // A body (WHIP/WHEP) follows the head: wait until all of it is here.
                    let Some(end) = head.checked_add(req.content_length) else {
                        return;
                    };
                    if pending.len() < end {
                        pending.reserve(end - pending.len());
                        break;
                    }
                    req.body = bytes::Bytes::copy_from_slice(&pending[head..end]);
                    pending.drain(..end);
                    let resp = super::origin::respond(&req, &registry, &*auth, &rtc).await;
                    metrics::counter!("weir_http_requests_total", "status" => resp.status.to_string())
                        .increment(1);
                    let keep = req.keep_alive && !shutdown.is_triggered();
                    if write(&mut stream, &resp, req.method != Method::Head, keep)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if let Some(at) = resp.available_at {
                        // Part available → its answer written to a viewer that waited.
                        metrics::histogram!(WAKE_TO_DELIVERY).record(at.elapsed().as_secs_f64());
                    }
                    if !keep {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "bad HTTP request");
                    let resp = Response::error(e.status(), &e.to_string());
                    let _ = write(&mut stream, &resp, true, false).await;
                    return;
                }
            }
        }
        buf.clear();
        let BufResult(res, back) = stream.read(buf).await;
        buf = back;
        if watchdog.reason().is_some() {
            return;
        }
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                watchdog.touch(Instant::now());
                pending.extend_from_slice(&buf[..n]);
            }
        }
    }
}

async fn write(
    stream: &mut TcpStream,
    resp: &Response,
    with_body: bool,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut head = resp.head(keep_alive);
    if let (Some(seg), true) = (&resp.segment_stream, with_body) {
        let BufResult(r, _) = stream.write_all(head).await;
        r?;
        return write_segment_stream(stream, seg).await;
    }
    if !with_body || resp.body.is_empty() {
        let BufResult(r, _) = stream.write_all(head).await;
        return r;
    }
    if resp.body.len() <= COALESCE_LIMIT {
        for piece in resp.body.pieces() {
            head.extend_from_slice(piece);
        }
        let BufResult(r, _) = stream.write_all(head).await;
        return r;
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
        let BufResult(r, _) = stream.write_vectored_all(batch).await;
        r?;
        at = end;
    }
    Ok(())
}

/// Sends segment `seg.msn` with chunked transfer: the parts made so far at once, then
/// each part as it is made, until the segment is complete (or the stream ends, or a part
/// takes longer than the blocking limit: the response then ends short and the client
/// sees a truncated chunked body, not a complete-looking segment).
async fn write_segment_stream(stream: &mut TcpStream, seg: &SegmentStream) -> std::io::Result<()> {
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
            let BufResult(r, _) = stream.write_all(chunk).await;
            r?;
        }
        sent = sent.max(parts.len());
        if complete {
            let BufResult(r, _) = stream.write_all(b"0\r\n\r\n".to_vec()).await;
            return r;
        }
        let limit = snapshot.target_duration().max(Duration::from_secs(1)) * 3;
        let needed = weir_hls::Position::after_part(seg.msn, sent as u64);
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
